package eval

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// separable draws points in R^d labelled by the sign of <w, x>, dropping those within margin.
func separable(n, d int, seed int64) (*torch.Tensor, []int64) {
	wr := rand.New(rand.NewSource(42)) // the same separating direction for every split
	w := make([]float64, d)
	for j := range w {
		w[j] = wr.NormFloat64()
	}
	rng := rand.New(rand.NewSource(seed))
	var x []float32
	var y []int64
	for len(y) < n {
		row := make([]float32, d)
		s := 0.0
		for j := range row {
			v := rng.NormFloat64()
			row[j] = float32(v)
			s += w[j] * v
		}
		if math.Abs(s) < 0.3 {
			continue
		}
		x = append(x, row...)
		if s > 0 {
			y = append(y, 1)
		} else {
			y = append(y, 0)
		}
	}
	return torch.FromSlice(x, int64(n), int64(d)), y
}

func TestProbeSeparable(t *testing.T) {
	x, y := separable(2000, 8, 1)
	xt, yt := separable(2000, 8, 2)
	r, err := LinearProbe(Data{X: x, Labels: y}, Data{X: xt, Labels: yt}, ProbeConfig{WeightDecay: 1e-6})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("separable: train %.4f test %.4f in %d iterations", r.TrainAcc, r.TestAcc, r.Iterations)
	if r.TrainAcc < 0.999 || r.TestAcc < 0.99 {
		t.Errorf("separable data: train %.4f test %.4f, want ~1", r.TrainAcc, r.TestAcc)
	}
}

// Two classes with means -mu e1 and +mu e1 and identity covariance: the Bayes accuracy is Phi(mu).
func TestProbeGaussianBayesAccuracy(t *testing.T) {
	const mu = 1.0
	draw := func(n int, seed int64) (*torch.Tensor, []int64) {
		rng := rand.New(rand.NewSource(seed))
		x := make([]float32, n*10)
		y := make([]int64, n)
		for i := 0; i < n; i++ {
			y[i] = int64(i % 2)
			for j := 0; j < 10; j++ {
				x[i*10+j] = float32(rng.NormFloat64())
			}
			x[i*10] += float32(mu * float64(2*y[i]-1))
		}
		return torch.FromSlice(x, int64(n), 10), y
	}
	x, y := draw(20000, 3)
	xt, yt := draw(20000, 4)
	r, err := LinearProbe(Data{X: x, Labels: y}, Data{X: xt, Labels: yt}, ProbeConfig{SelectWeightDecay: true, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	bayes := 0.5 * (1 + math.Erf(mu/math.Sqrt2)) // 0.8413
	t.Logf("gaussian: test %.4f, Bayes %.4f, lambda %g, %d iterations", r.TestAcc, bayes, r.WeightDecay, r.Iterations)
	// the test set's sampling error is about sqrt(0.84*0.16/20000) = 0.0026
	if math.Abs(r.TestAcc-bayes) > 0.01 {
		t.Errorf("test accuracy %.4f, want the Bayes accuracy %.4f +- 0.01", r.TestAcc, bayes)
	}
	if len(r.PerClass) != 2 || r.PerClass[0].N+r.PerClass[1].N != 20000 {
		t.Errorf("per-class accuracy %+v", r.PerClass)
	}
}

func TestProbeDeterministicAndGroups(t *testing.T) {
	x, y := gaussianClasses(600, 6, 3, 2, 7)
	g := make([]int64, len(y))
	for i := range g {
		g[i] = int64(i % 4)
	}
	run := func() *ProbeResult {
		r, err := LinearProbe(Data{X: x, Labels: y}, Data{X: x, Labels: y, Groups: g}, ProbeConfig{SelectWeightDecay: true, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := run(), run()
	if a.TestAcc != b.TestAcc || a.WeightDecay != b.WeightDecay || a.FinalLoss != b.FinalLoss {
		t.Errorf("two runs differ: %+v vs %+v", a, b)
	}
	if len(a.PerGroup) != 4 || a.WorstGroupAcc == nil {
		t.Fatalf("per-group accuracy missing: %+v", a.PerGroup)
	}
	w := 1.0
	for _, pg := range a.PerGroup {
		w = math.Min(w, pg.Accuracy)
	}
	if *a.WorstGroupAcc != w {
		t.Errorf("worst group %v, min of per-group %v", *a.WorstGroupAcc, w)
	}
}

func TestProbeErrors(t *testing.T) {
	x, y := gaussianClasses(50, 4, 2, 2, 1)
	x3, _ := gaussianClasses(50, 3, 2, 2, 1)
	cases := []struct {
		name       string
		train, tst Data
		cfg        ProbeConfig
		want       string
	}{
		{"short labels", Data{X: x, Labels: y[:10]}, Data{X: x, Labels: y}, ProbeConfig{}, "10 labels for 50"},
		{"columns", Data{X: x, Labels: y}, Data{X: x3, Labels: y}, ProbeConfig{}, "columns"},
		{"nil", Data{Labels: y}, Data{X: x, Labels: y}, ProbeConfig{}, "nil"},
		{"negative label", Data{X: x, Labels: append([]int64{-1}, y[1:]...)}, Data{X: x, Labels: y}, ProbeConfig{}, "negative"},
		{"unseen class", Data{X: x, Labels: y}, Data{X: x, Labels: append([]int64{5}, y[1:]...)}, ProbeConfig{}, "no training examples"},
		{"one class", Data{X: x, Labels: make([]int64, 50)}, Data{X: x, Labels: make([]int64, 50)}, ProbeConfig{}, "single class"},
		{"decay", Data{X: x, Labels: y}, Data{X: x, Labels: y}, ProbeConfig{WeightDecay: -1}, "weight decay"},
		{"groups", Data{X: x, Labels: y}, Data{X: x, Labels: y, Groups: []int64{1}}, ProbeConfig{}, "groups"},
	}
	for _, c := range cases {
		_, err := LinearProbe(c.train, c.tst, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	// a freed tensor is a libtorch-side error, returned not panicked
	f := torch.FromSlice([]float32{1, 2, 3, 4}, 2, 2)
	f.Free()
	if _, err := LinearProbe(Data{X: f, Labels: []int64{0, 1}}, Data{X: x, Labels: y}, ProbeConfig{}); err == nil {
		t.Error("freed tensor accepted")
	}
}
