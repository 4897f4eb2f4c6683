package train

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/eval"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// spuriousSet is a two-class set of 3x16x16 noisy images: the top half's brightness is the class
// (a small step), the bottom half's (a large step) an attribute that agrees with the class on a share agree of the rows; the groups
// are (class, attribute) = 2*class + attribute, as Waterbirds' (bird, place).
func spuriousSet(n int, agree float64, seed uint64) *data.Dataset {
	r := rand.New(rand.NewPCG(seed, 1))
	d := &data.Dataset{Name: "spurious", N: n, C: 3, H: 16, W: 16, CoarseNames: []string{"a", "b"}}
	// the attribute is the easier cue: a model that leans on it fails the rare groups
	level := func(bit int64, step float64) float64 { return 60 + step*float64(bit) }
	for i := 0; i < n; i++ {
		y := int64(i % 2)
		a := y
		if r.Float64() >= agree {
			a = 1 - y
		}
		for c := 0; c < 3; c++ {
			for h := 0; h < 16; h++ {
				for w := 0; w < 16; w++ {
					v := level(a, 120)
					if h < 8 {
						v = level(y, 60)
					}
					d.Pixels = append(d.Pixels, uint8(math.Max(0, math.Min(255, v+r.NormFloat64()*40))))
				}
			}
		}
		d.Coarse, d.Fine, d.Group = append(d.Coarse, y), append(d.Fine, -1), append(d.Group, 2*y+a)
	}
	return d
}

// georgeFullRun trains a fresh width-0.0625 ResNet-18 (seed 3) with georgeFull for epochs and
// returns the result and the encoder's first weight before and after.
func georgeFullRun(t *testing.T, train, val, test *data.Dataset, epochs int) (res *eval.DROResult, before, after []float64) {
	t.Helper()
	cfg := Default()
	cfg.Model.Width = 0.0625
	cfg.Augment.Mean, cfg.Augment.Std = []float64{0.5, 0.5, 0.5}, []float64{0.25, 0.25, 0.25}
	cfg = cfg.Normalized()
	torch.ManualSeed(3)
	m, err := NewModel(cfg, Shape{C: 3, H: 16, W: 16, CoarseClasses: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	aug, err := data.NewAugmenter(cfg.Augment, "spurious", 3, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trained{cfg: cfg, model: m, aug: aug, dev: torch.CPU}
	before = m.Encoder.Parameters()[0].Tensor.Float64s()
	// the found groups are the true ones here: this tests the training and the selection
	res, err = georgeFull(tr, train, val, test, train.Group, val.Group,
		GeorgeFullConfig{Epochs: epochs, LR: 1e-3, Eta: 0.1, BatchSize: 64, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	return res, before, m.Encoder.Parameters()[0].Tensor.Float64s()
}

// GEORGE's full-network variant trains the encoder, reports test accuracies that its per-group counts
// give, and keeps the epoch validation chose: training exactly that many epochs gives the same result.
func TestGeorgeFullNetwork(t *testing.T) {
	train, val, test := spuriousSet(240, 0.9, 1), spuriousSet(80, 0.5, 2), spuriousSet(120, 0.5, 3)
	const epochs = 8
	res, before, after := georgeFullRun(t, train, val, test, epochs)
	if reflect.DeepEqual(before, after) {
		t.Error("the encoder's first convolution did not change: the full network was not trained")
	}
	if res.SelectedStep < 1 || res.SelectedStep > epochs {
		t.Fatalf("selected epoch %d, want 1..%d", res.SelectedStep, epochs)
	}
	n, correct, worst := 0, 0, math.Inf(1)
	for _, g := range res.PerGroup {
		n, correct, worst = n+g.N, correct+g.Correct, math.Min(worst, g.Accuracy)
	}
	if n != test.N || len(res.PerGroup) != 4 || res.TestAcc != float64(correct)/float64(n) || res.WorstGroupAcc != worst {
		t.Errorf("per-group counts %+v (n %d of %d) do not give test accuracy %v and worst group %v",
			res.PerGroup, n, test.N, res.TestAcc, res.WorstGroupAcc)
	}
	sum := 0.0
	for _, w := range res.GroupWeights {
		sum += w.Weight
	}
	if math.Abs(sum-1) > 1e-5 || len(res.GroupWeights) != 4 {
		t.Errorf("group weights %+v: want four summing to 1", res.GroupWeights)
	}
	again, _, _ := georgeFullRun(t, train, val, test, res.SelectedStep)
	if again.SelectedStep != res.SelectedStep || *again.ValWorstGroupAcc != *res.ValWorstGroupAcc ||
		!reflect.DeepEqual(again.Predictions, res.Predictions) {
		t.Errorf("the selected %d epochs trained alone: epoch %d, val worst found group %v; the %d-epoch run: epoch %d, %v (test predictions equal: %v)",
			res.SelectedStep, again.SelectedStep, *again.ValWorstGroupAcc, epochs, res.SelectedStep, *res.ValWorstGroupAcc,
			reflect.DeepEqual(again.Predictions, res.Predictions))
	}
	t.Logf("selected epoch %d: val worst group %.3f, test accuracy %.3f, worst group %.3f, weights %+v",
		res.SelectedStep, *res.ValWorstGroupAcc, res.TestAcc, res.WorstGroupAcc, res.GroupWeights)
}

// The group-weight step against the formula computed here in float64: q_g exp(eta (loss_g + adj_g))
// for the groups in the batch (an absent group keeps its weight before renormalising).
func TestUpdateGroupWeights(t *testing.T) {
	q0 := []float64{0.1, 0.2, 0.3, 0.4}
	loss := []float64{1.5, 0.2, 9, 0.7} // group 2 is absent: its loss must not count
	count := []float64{3, 1, 0, 2}
	adj := []float64{0.5, 1, 0.25, 0.1}
	const eta = 0.3
	want := make([]float64, 4)
	total := 0.0
	for g := range q0 {
		want[g] = q0[g]
		if count[g] > 0 {
			want[g] *= math.Exp(eta * (loss[g] + adj[g]))
		}
		total += want[g]
	}
	q := torch.FromSlice(q0)
	updateGroupWeights(q, torch.FromSlice(loss), torch.FromSlice(count), torch.FromSlice(adj), eta)
	for g, got := range q.Float64s() {
		if math.Abs(got-want[g]/total) > 1e-12 {
			t.Errorf("q[%d] = %v, want %v", g, got, want[g]/total)
		}
	}
}
