// Package plot draws spreadtrain's PNG figures with gonum.org/v1/plot: training curves, a 2-D PCA
// projection of embeddings coloured by fine label (the picture of collapse vs spread), and a
// generic line plot (e.g. metrics against alpha in a sweep). It is free of libtorch: pass Go slices.
package plot

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/spreadtrain/spreadtrain/internal/atomicfile"
)

// Record is one logged point of training: a step and named metric values.
type Record struct {
	Step   int64
	Values map[string]float64
}

// Series is one named curve of a line plot.
type Series struct {
	Name string
	Y    []float64
}

// palette holds distinguishable colours (Tableau 10, then Tableau 20's light shades).
var palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255},
	{140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255},
	{174, 199, 232, 255}, {255, 187, 120, 255}, {152, 223, 138, 255}, {255, 152, 150, 255}, {197, 176, 213, 255},
	{196, 156, 148, 255}, {247, 182, 210, 255}, {199, 199, 199, 255}, {219, 219, 141, 255}, {158, 218, 229, 255},
}

// Color is the i-th palette colour (cycling past 20).
func Color(i int) color.Color { return palette[((i%len(palette))+len(palette))%len(palette)] }

func checkPNG(path string) error {
	if strings.ToLower(filepath.Ext(path)) != ".png" {
		return fmt.Errorf("plot: %s: the file name must end in .png", path)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// TrainingCurves draws one panel per metric (names, or every metric seen, sorted), stacked vertically,
// each a curve of value against step; records missing a metric or holding NaN/Inf skip that point.
func TrainingCurves(path, title string, records []Record, names ...string) error {
	if err := checkPNG(path); err != nil {
		return err
	}
	if len(records) == 0 {
		return fmt.Errorf("plot: training curves: no records")
	}
	if len(names) == 0 {
		seen := map[string]bool{}
		for _, r := range records {
			for k := range r.Values {
				seen[k] = true
			}
		}
		for k := range seen {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	if len(names) == 0 {
		return fmt.Errorf("plot: training curves: the records hold no values")
	}
	plots := make([][]*plot.Plot, len(names))
	for i, name := range names {
		p := plot.New()
		if i == 0 && title != "" {
			p.Title.Text = title
		}
		p.Y.Label.Text = name
		if i == len(names)-1 {
			p.X.Label.Text = "step"
		}
		var xy plotter.XYs
		for _, r := range records {
			if v, ok := r.Values[name]; ok && finite(v) {
				xy = append(xy, plotter.XY{X: float64(r.Step), Y: v})
			}
		}
		if len(xy) == 0 {
			return fmt.Errorf("plot: training curves: no finite values for %q", name)
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("plot: %q: %w", name, err)
		}
		l.Color = Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l, plotter.NewGrid())
		plots[i] = []*plot.Plot{p}
	}
	w, h := 7*vg.Inch, vg.Length(len(names))*2*vg.Inch
	return saveGrid(path, plots, w, h)
}

func saveGrid(path string, plots [][]*plot.Plot, w, h vg.Length) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: vg.Millimeter, PadY: vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 2 * vg.Millimeter}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		for j := range plots[i] {
			if plots[i][j] != nil {
				plots[i][j].Draw(canvases[i][j])
			}
		}
	}
	return writePNG(path, img)
}

func writePNG(path string, img *vgimg.Canvas) error {
	return writeAtomic(path, vgimg.PngCanvas{Canvas: img})
}

// savePNG is gonum's Plot.Save for PNGs, through the atomic writer.
func savePNG(path string, p *plot.Plot, w, h vg.Length) error {
	img, err := p.WriterTo(w, h, "png")
	if err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	return writeAtomic(path, img)
}

// writeAtomic writes an image so that a crash never leaves a truncated PNG under path.
func writeAtomic(path string, img io.WriterTo) error {
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { _, err := img.WriteTo(w); return err }); err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	return nil
}

// Lines draws several named series against shared x values (e.g. fine accuracy, intra-class cosine
// against alpha), with points marked and a legend.
func Lines(path, title, xLabel, yLabel string, x []float64, series ...Series) error {
	if err := checkPNG(path); err != nil {
		return err
	}
	if len(x) == 0 || len(series) == 0 {
		return fmt.Errorf("plot: line plot: need x values and at least one series")
	}
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xLabel, yLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	for i, s := range series {
		if len(s.Y) != len(x) {
			return fmt.Errorf("plot: series %q has %d values for %d x values", s.Name, len(s.Y), len(x))
		}
		var xy plotter.XYs
		for j := range x {
			if finite(x[j]) && finite(s.Y[j]) {
				xy = append(xy, plotter.XY{X: x[j], Y: s.Y[j]})
			}
		}
		if len(xy) == 0 {
			return fmt.Errorf("plot: series %q has no finite points", s.Name)
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return fmt.Errorf("plot: series %q: %w", s.Name, err)
		}
		l.Color, l.Width = Color(i), vg.Points(1.5)
		pts.Color, pts.Shape, pts.Radius = Color(i), draw.CircleGlyph{}, vg.Points(2.5)
		p.Add(l, pts)
		p.Legend.Add(s.Name, l, pts)
	}
	headroom(p, 0.12*float64(len(series)))
	return savePNG(path, p, 6*vg.Inch, 4*vg.Inch)
}

// headroom extends the y range upwards by frac of its span (capped) so a top legend sits above the data.
func headroom(p *plot.Plot, frac float64) {
	span := p.Y.Max - p.Y.Min
	if span <= 0 {
		span = 1
	}
	p.Y.Max += math.Min(frac, 0.8) * span
}

// Embedding2D scatters 2-D points (xy holds x0, y0, x1, y1, ...) coloured by label, one legend entry
// per label (names[label] when given).
func Embedding2D(path, title string, xy []float64, labels []int64, names map[int64]string) error {
	if err := checkPNG(path); err != nil {
		return err
	}
	if len(xy) != 2*len(labels) || len(labels) == 0 {
		return fmt.Errorf("plot: embedding: %d coordinates for %d labels (want 2 per point, at least one point)", len(xy), len(labels))
	}
	by := map[int64]plotter.XYs{}
	for i, l := range labels {
		if finite(xy[2*i]) && finite(xy[2*i+1]) {
			by[l] = append(by[l], plotter.XY{X: xy[2*i], Y: xy[2*i+1]})
		}
	}
	keys := make([]int64, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, "PC 1", "PC 2"
	p.Add(plotter.NewGrid())
	for i, k := range keys {
		s, err := plotter.NewScatter(by[k])
		if err != nil {
			return fmt.Errorf("plot: label %d: %w", k, err)
		}
		pc := palette[i%len(palette)]
		c := color.NRGBA{R: pc.R, G: pc.G, B: pc.B, A: 190} // non-premultiplied: translucent, same hue
		s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(1.6), Shape: draw.CircleGlyph{}}
		p.Add(s)
		name := names[k]
		if name == "" {
			name = fmt.Sprint(k)
		}
		// a larger glyph for the legend than for the points
		thumb := &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: palette[i%len(palette)], Radius: vg.Points(4), Shape: draw.CircleGlyph{}}}
		p.Legend.Add(name, thumb)
	}
	p.Legend.Top, p.Legend.Left = true, false
	headroom(p, 0.06*float64(len(keys)))
	return savePNG(path, p, 6*vg.Inch, 6*vg.Inch)
}

// PCA2 projects the n rows of the row-major [n, d] data onto their first two principal components
// (eigenvectors of the covariance, signs fixed so each component's largest loading is positive).
// It returns x0, y0, x1, y1, ... and the fraction of variance each component explains.
func PCA2(data []float64, n, d int) (xy []float64, explained [2]float64, err error) {
	if n < 2 || d < 1 || len(data) != n*d {
		return nil, explained, fmt.Errorf("plot: PCA: %d values for %d x %d (need n >= 2, d >= 1)", len(data), n, d)
	}
	x := mat.NewDense(n, d, append([]float64(nil), data...))
	for j := 0; j < d; j++ {
		m := 0.0
		for i := 0; i < n; i++ {
			m += x.At(i, j)
		}
		m /= float64(n)
		for i := 0; i < n; i++ {
			x.Set(i, j, x.At(i, j)-m)
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1/float64(n-1), x.T())
	var eig mat.EigenSym
	if !eig.Factorize(&cov, true) {
		return nil, explained, fmt.Errorf("plot: PCA: eigendecomposition failed")
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	total := 0.0
	for _, v := range vals {
		total += math.Max(v, 0)
	}
	comps := make([][]float64, 2)
	for c := 0; c < 2; c++ {
		col := d - 1 - c
		v := make([]float64, d)
		if col >= 0 {
			mat.Col(v, col, &vecs)
			if total > 0 {
				explained[c] = math.Max(vals[col], 0) / total
			}
		}
		big := 0
		for j := range v {
			if math.Abs(v[j]) > math.Abs(v[big]) {
				big = j
			}
		}
		if v[big] < 0 {
			for j := range v {
				v[j] = -v[j]
			}
		}
		comps[c] = v
	}
	xy = make([]float64, 2*n)
	for i := 0; i < n; i++ {
		row := x.RawRowView(i)
		for c := 0; c < 2; c++ {
			s := 0.0
			for j, w := range comps[c] {
				s += row[j] * w
			}
			xy[2*i+c] = s
		}
	}
	return xy, explained, nil
}
