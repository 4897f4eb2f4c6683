package eval

import (
	"math"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func unit(deg float64) []float32 {
	r := deg * math.Pi / 180
	return []float32{float32(math.Cos(r)), float32(math.Sin(r))}
}

// A query at angle 0 with one class-0 neighbour at cosine 0.9 and two class-1 neighbours at cosine 0.5:
// sharp votes (T = 0.1: e^9 > 2 e^5) pick class 0, flat votes (T = 10) pick the majority, class 1.
func TestKNNWeightedVotes(t *testing.T) {
	a, b := math.Acos(0.9)*180/math.Pi, 60.0
	var x []float32
	for _, d := range []float64{a, b, -b, 180} {
		x = append(x, unit(d)...)
	}
	train := Data{X: torch.FromSlice(x, 4, 2), Labels: []int64{0, 1, 1, 0}}
	q := Data{X: torch.FromSlice([]float32{3, 0}, 1, 2), Labels: []int64{0}} // norm does not matter
	for _, c := range []struct {
		k    int
		temp float64
		want int64
	}{{3, 0.1, 0}, {3, 10, 1}, {4, 0.1, 0}, {1, 10, 0}, {2, 0.1, 0}, {200, 100, 1}} {
		r, err := KNN(train, q, KNNConfig{K: c.k, Temperature: c.temp})
		if err != nil {
			t.Fatal(err)
		}
		if r.Predictions[0] != c.want {
			t.Errorf("k %d T %v: predicted %d, want %d", c.k, c.temp, r.Predictions[0], c.want)
		}
	}
	// k = 200 caps at the 4 training rows: votes class 0: e^0.009+e^-0.01, class 1: 2e^0.005: class 1
	r, _ := KNN(train, q, KNNConfig{Temperature: 100})
	if r.K != 4 {
		t.Errorf("k capped to %d, want 4", r.K)
	}
}

func TestKNNBlocksAndLeaveOneOut(t *testing.T) {
	x, y := gaussianClasses(900, 8, 3, 4, 11)
	xt, yt := gaussianClasses(500, 8, 3, 4, 12)
	full, err := KNN(Data{X: x, Labels: y}, Data{X: xt, Labels: yt}, KNNConfig{K: 20})
	if err != nil {
		t.Fatal(err)
	}
	blocked, err := KNN(Data{X: x, Labels: y}, Data{X: xt, Labels: yt}, KNNConfig{K: 20, BlockSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	for i := range full.Predictions {
		if full.Predictions[i] != blocked.Predictions[i] {
			t.Fatalf("blocked and whole predictions differ at %d", i)
		}
	}
	if full.Accuracy < 0.9 {
		t.Errorf("kNN accuracy %.3f on well-separated classes", full.Accuracy)
	}
	// leave-one-out on a set where each point's only same-label neighbour is itself
	loo := Data{X: torch.FromSlice([]float32{1, 0, 0.99, 0.1, 0, 1}, 3, 2), Labels: []int64{0, 1, 1}}
	r, err := KNN(loo, loo, KNNConfig{K: 1, ExcludeSelf: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 0, 1}; r.Predictions[0] != want[0] || r.Predictions[1] != want[1] || r.Predictions[2] != want[2] {
		t.Errorf("leave-one-out predictions %v, want %v", r.Predictions, want)
	}
}

func TestKNNErrors(t *testing.T) {
	x, y := gaussianClasses(20, 3, 2, 2, 1)
	d := Data{X: x, Labels: y}
	for _, c := range []struct {
		cfg  KNNConfig
		tr   Data
		want string
	}{
		{KNNConfig{K: -1}, d, "k = -1"},
		{KNNConfig{Temperature: -1}, d, "temperature"},
		{KNNConfig{}, Data{X: x, Labels: y[:3]}, "3 labels for 20"},
		{KNNConfig{ExcludeSelf: true}, Data{X: x.Narrow(0, 0, 5), Labels: y[:5]}, "ExcludeSelf"},
	} {
		if _, err := KNN(c.tr, d, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
}
