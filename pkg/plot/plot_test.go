package plot

import (
	"bytes"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// outDir is t.TempDir, or $PLOT_OUT to keep the PNGs for a look.
func outDir(t *testing.T) string {
	if d := os.Getenv("PLOT_OUT"); d != "" {
		return d
	}
	return t.TempDir()
}

func checkImage(t *testing.T, path string, minW, minH int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if r := img.Bounds(); r.Dx() < minW || r.Dy() < minH {
		t.Errorf("%s: %v too small", path, r)
	}
	// not blank: some pixels are not white
	r := img.Bounds()
	dark := 0
	for y := r.Min.Y; y < r.Max.Y; y += 3 {
		for x := r.Min.X; x < r.Max.X; x += 3 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if cr+cg+cb < 3*0xe000 {
				dark++
			}
		}
	}
	if dark < 50 {
		t.Errorf("%s looks blank (%d non-white samples)", path, dark)
	}
}

func TestTrainingCurvesAndLines(t *testing.T) {
	dir := outDir(t)
	var recs []Record
	for s := int64(0); s <= 1000; s += 20 {
		recs = append(recs, Record{Step: s, Values: map[string]float64{
			"loss": 5*math.Exp(-float64(s)/300) + 0.5, "intra_cos": 0.2 + 0.7*(1-math.Exp(-float64(s)/200))}})
	}
	recs[3].Values["loss"] = math.NaN() // skipped
	p := filepath.Join(dir, "curves.png")
	if err := TrainingCurves(p, "SupCon, alpha 0.5", recs); err != nil {
		t.Fatal(err)
	}
	checkImage(t, p, 300, 300)
	alphas := []float64{0.2, 0.3, 0.5, 0.7, 0.9, 1}
	l := filepath.Join(dir, "sweep.png")
	if err := Lines(l, "alpha sweep", "alpha", "value", alphas,
		Series{"fine probe acc", []float64{0.6, 0.9, 0.95, 0.9, 0.7, 0.5}},
		Series{"intra-class cos", []float64{0.05, 0.3, 0.6, 0.8, 0.95, 0.99}}); err != nil {
		t.Fatal(err)
	}
	checkImage(t, l, 300, 200)
	if err := Lines(l, "", "", "", alphas, Series{"short", []float64{1}}); err == nil {
		t.Error("a series of the wrong length was accepted")
	}
	if err := TrainingCurves(filepath.Join(dir, "x.jpg"), "", recs); err == nil {
		t.Error("a non-PNG path was accepted")
	}
	if err := TrainingCurves(p, "", nil); err == nil {
		t.Error("no records accepted")
	}
}

func TestPCA2AndEmbedding(t *testing.T) {
	// points along (1, 1, 0) with small noise: PC 1 explains almost everything and is +-(1,1,0)/sqrt2
	rng := rand.New(rand.NewSource(1))
	n, d := 500, 3
	data := make([]float64, n*d)
	labels := make([]int64, n)
	for i := 0; i < n; i++ {
		s := rng.NormFloat64() * 3
		data[i*d], data[i*d+1], data[i*d+2] = s+0.1*rng.NormFloat64(), s+0.1*rng.NormFloat64(), 0.3*rng.NormFloat64()+5
		labels[i] = int64(i % 6)
	}
	xy, ex, err := PCA2(data, n, d)
	if err != nil {
		t.Fatal(err)
	}
	if ex[0] < 0.98 || ex[0]+ex[1] > 1+1e-9 || ex[1] <= 0 {
		t.Errorf("explained variance %v", ex)
	}
	// PC1 score = (x0 + x1 - mean) / sqrt2
	var m0, m1 float64
	for i := 0; i < n; i++ {
		m0 += data[i*d]
		m1 += data[i*d+1]
	}
	m0, m1 = m0/float64(n), m1/float64(n)
	for i := 0; i < 5; i++ {
		want := (data[i*d] - m0 + data[i*d+1] - m1) / math.Sqrt2
		if math.Abs(xy[2*i]-want) > 0.05 {
			t.Errorf("row %d: PC1 %.4f, want about %.4f", i, xy[2*i], want)
		}
	}
	p := filepath.Join(outDir(t), "embedding.png")
	if err := Embedding2D(p, "test embedding", xy, labels, map[int64]string{0: "airplane"}); err != nil {
		t.Fatal(err)
	}
	checkImage(t, p, 300, 300)
	if _, _, err := PCA2(data, n, 4); err == nil {
		t.Error("wrong shape accepted")
	}
	if err := Embedding2D(p, "", xy[:10], labels, nil); err == nil {
		t.Error("mismatched points accepted")
	}
}
