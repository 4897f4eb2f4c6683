package eval

import (
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
