package eval

import (
	"os"
	"testing"
	"time"
)

func TestProbeSpeed50k(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	x, y := gaussianClasses(50000, 512, 10, 1.0, 1)
	xt, yt := gaussianClasses(10000, 512, 10, 1.0, 2)
	t0 := time.Now()
	r, err := LinearProbe(Data{X: x, Labels: y}, Data{X: xt, Labels: yt}, ProbeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe 50k x 512, 10 classes: %.2fs, %d iters, conv %v, train %.3f test %.3f", time.Since(t0).Seconds(), r.Iterations, r.Converged, r.TrainAcc, r.TestAcc)
}

// TestTimings50k logs the time of every protocol on 50k x 512 (set SPREADTRAIN_EVAL_BENCH=1).
func TestTimings50k(t *testing.T) {
	if os.Getenv("SPREADTRAIN_EVAL_BENCH") == "" {
		t.Skip("set SPREADTRAIN_EVAL_BENCH=1")
	}
	x, y := gaussianClasses(50000, 512, 10, 1.5, 1)
	xt, yt := gaussianClasses(10000, 512, 10, 1.5, 2)
	coarse := func(v []int64) []int64 {
		out := make([]int64, len(v))
		for i, l := range v {
			out[i] = l / 5
		}
		return out
	}
	tr, te := Data{X: x, Labels: y}, Data{X: xt, Labels: yt}
	timeit := func(name string, f func() error) {
		t0 := time.Now()
		if err := f(); err != nil {
			t.Fatal(name, err)
		}
		t.Logf("%-32s %.2fs", name, time.Since(t0).Seconds())
	}
	timeit("probe 10 classes", func() error { _, err := LinearProbe(tr, te, ProbeConfig{}); return err })
	y100, yt100 := make([]int64, len(y)), make([]int64, len(yt))
	for i := range y {
		y100[i] = y[i]*10 + int64(i%10)
	}
	for i := range yt {
		yt100[i] = yt[i]*10 + int64(i%10)
	}
	timeit("probe 100 classes", func() error {
		_, err := LinearProbe(Data{X: x, Labels: y100}, Data{X: xt, Labels: yt100}, ProbeConfig{})
		return err
	})
	timeit("probe 10 classes, select decay", func() error {
		_, err := LinearProbe(tr, te, ProbeConfig{SelectWeightDecay: true})
		return err
	})
	timeit("knn k=200 (10k queries)", func() error { _, err := KNN(tr, te, KNNConfig{}); return err })
	timeit("subgroups kmeans 2 classes kmax 10", func() error {
		_, err := DiscoverSubgroups(Data{X: x, Labels: coarse(y)}, ClusterConfig{})
		return err
	})
	timeit("subgroups gmm 2 classes kmax 6", func() error {
		_, err := DiscoverSubgroups(Data{X: x, Labels: coarse(y)}, ClusterConfig{Method: "gmm", KMax: 6, FitSample: 5000})
		return err
	})
	g := make([]int64, len(y))
	gt := make([]int64, len(yt))
	for i := range g {
		g[i] = y[i]
	}
	for i := range gt {
		gt[i] = yt[i]
	}
	timeit("group DRO 2000 steps", func() error {
		_, err := GroupDRO(Data{X: x, Labels: coarse(y), Groups: g}, Data{X: xt, Labels: coarse(yt), Groups: gt}, DROConfig{})
		return err
	})
	timeit("spread", func() error {
		_, err := SpreadDiagnostics(SpreadInput{X: x, Labels: y, View1: x, View2: x}, SpreadConfig{})
		return err
	})
}
