// Command summarize turns the evaluated runs of experiments/run.sh into tables (mean and standard
// deviation over seeds) and the alpha-sweep plot.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spreadtrain/spreadtrain/internal/atomicfile"
	"github.com/spreadtrain/spreadtrain/pkg/eval"
	"github.com/spreadtrain/spreadtrain/pkg/plot"
)

func main() {
	runs := flag.String("runs", "runs/experiments-cpu", "the runs folder of experiments/run.sh")
	out := flag.String("out", "experiments/results/cpu", "output prefix (.md and _alpha.png)")
	flag.Parse()
	if err := summarize(*runs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(1)
	}
}

// metrics are the table's columns, eval's one list of headline numbers.
var metrics = eval.Headlines

// minutes is the table's key for a run's wall time.
const minutes = "minutes"

// runMinutes is the wall time of a run: from its config.yaml (written when training starts) to its
// metrics.json (written when evaluation ends). A resumed run's gap counts too.
func runMinutes(dir string) (float64, bool) {
	start, err1 := os.Stat(filepath.Join(dir, "config.yaml"))
	end, err2 := os.Stat(filepath.Join(dir, "metrics.json"))
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return end.ModTime().Sub(start.ModTime()).Minutes(), true
}

func meanStd(v []float64) (float64, float64) {
	var m, s float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	if len(v) > 1 {
		s = math.Sqrt(s / float64(len(v)-1))
	}
	return m, s
}

func summarize(runs, out string) error {
	files, _ := filepath.Glob(filepath.Join(runs, "*", "*", "seed*", "metrics.json"))
	// dataset -> method -> metric -> values over seeds
	table := map[string]map[string]map[string][]float64{}
	for _, f := range files {
		rel, _ := filepath.Rel(runs, f)
		parts := strings.Split(rel, string(filepath.Separator))
		ds, method := parts[0], parts[1]
		r, err := eval.ReadReport(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if table[ds] == nil {
			table[ds] = map[string]map[string][]float64{}
		}
		if table[ds][method] == nil {
			table[ds][method] = map[string][]float64{}
		}
		for _, m := range metrics {
			if v := m.Of(r); v != nil {
				table[ds][method][m.Name] = append(table[ds][method][m.Name], *v)
			}
		}
		if d, ok := runMinutes(filepath.Dir(f)); ok {
			table[ds][method][minutes] = append(table[ds][method][minutes], d)
		}
	}
	var b strings.Builder
	b.WriteString("# Experiments: " + runs + "\n\nTest accuracies in percent (mean ± standard deviation over seeds, n = seeds); intra-class cosine of the test embeddings; cluster ARI: per-class k-means clusters of the training embeddings against the fine labels (or the true groups), size-weighted adjusted Rand index; minutes: wall time of one run, training and evaluation (mean over seeds).\n")
	var dss []string
	for ds := range table {
		dss = append(dss, ds)
	}
	sort.Strings(dss)
	order := []string{"ce", "simclr", "supcon", "spread", "supcon-ae", "thanos"}
	for _, ds := range dss {
		// only the columns this dataset has (worst-group ones need groups)
		var cols []eval.Headline
		for _, m := range metrics {
			for _, row := range table[ds] {
				if len(row[m.Name]) > 0 {
					cols = append(cols, m)
					break
				}
			}
		}
		fmt.Fprintf(&b, "\n## %s\n\n| method | n | minutes |", ds)
		for _, m := range cols {
			fmt.Fprintf(&b, " %s |", m.Name)
		}
		b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(cols)) + "\n")
		for _, method := range order {
			row, ok := table[ds][method]
			if !ok {
				continue
			}
			n := 0
			for name, v := range row {
				if name != minutes {
					n = max(n, len(v))
				}
			}
			fmt.Fprintf(&b, "| %s | %d |", method, n)
			if v := row[minutes]; len(v) > 0 {
				mean, _ := meanStd(v)
				fmt.Fprintf(&b, " %.1f |", mean)
			} else {
				b.WriteString(" - |")
			}
			for _, m := range cols {
				v := row[m.Name]
				if len(v) == 0 {
					b.WriteString(" - |")
					continue
				}
				mean, sd := meanStd(v)
				scale, format := 100.0, " %.1f"
				if m.Name == "intra-class cos" || m.Name == "cluster ARI" {
					scale, format = 1, " %.3f"
				}
				fmt.Fprintf(&b, format, scale*mean)
				if len(v) > 1 {
					fmt.Fprintf(&b, " ±"+format, scale*sd)
				}
				b.WriteString(" |")
			}
			b.WriteString("\n")
		}
	}
	if err := sweep(runs, out, &b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(out+".md", 0o644, func(w io.Writer) error { _, err := io.WriteString(w, b.String()); return err }); err != nil {
		return err
	}
	fmt.Print(b.String())
	return nil
}

// sweep plots fine-probe accuracy and intra-class cosine against alpha.
func sweep(runs, out string, b *strings.Builder) error {
	dirs, _ := filepath.Glob(filepath.Join(runs, "sweep-*", "alpha*", "metrics.json"))
	type point struct{ alpha, fine, coarse, intra float64 }
	var pts []point
	for _, f := range dirs {
		a, err := strconv.ParseFloat(strings.TrimPrefix(filepath.Base(filepath.Dir(f)), "alpha"), 64)
		if err != nil {
			continue
		}
		r, err := eval.ReadReport(f)
		if err != nil || r.FineProbe == nil || r.CoarseProbe == nil || r.Spread == nil {
			continue
		}
		pts = append(pts, point{a, r.FineProbe.TestAcc, r.CoarseProbe.TestAcc, r.Spread.IntraClassCosine})
	}
	if len(pts) < 2 {
		return nil
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].alpha < pts[j].alpha })
	x := make([]float64, len(pts))
	fine, coarse, intra := make([]float64, len(pts)), make([]float64, len(pts)), make([]float64, len(pts))
	b.WriteString("\n## Alpha sweep (L_spread, one seed)\n\n| alpha | coarse probe | fine probe | intra-class cos |\n|---|---|---|---|\n")
	for i, p := range pts {
		x[i], fine[i], coarse[i], intra[i] = p.alpha, p.fine, p.coarse, p.intra
		fmt.Fprintf(b, "| %g | %.1f | %.1f | %.3f |\n", p.alpha, 100*p.coarse, 100*p.fine, p.intra)
	}
	return plot.Lines(out+"_alpha.png", "the perfect-balance curve: L_spread against alpha", "alpha", "accuracy / cosine", x,
		plot.Series{Name: "fine probe accuracy", Y: fine}, plot.Series{Name: "coarse probe accuracy", Y: coarse},
		plot.Series{Name: "intra-class cosine", Y: intra})
}
