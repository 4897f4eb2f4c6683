package eval

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// spurious builds a Waterbirds-like feature set: label y in {0,1}, spurious attribute a in {0,1}
// equal to y with probability pMaj; group = 2*y + a. Feature 0 is a weak core feature (y-0.5)*coreMu
// + N(0,1) in every group; feature 1 is the spurious one, (a-0.5)*4 + N(0, 0.5); 6 noise features.
func spurious(n int, pMaj float64, balanced bool, seed int64) Data {
	rng := rand.New(rand.NewSource(seed))
	const d, coreMu = 8, 2.0
	x := make([]float32, n*d)
	y := make([]int64, n)
	g := make([]int64, n)
	for i := 0; i < n; i++ {
		yi := int64(rng.Intn(2))
		ai := yi
		if balanced {
			ai = int64((i / 2) % 2)
			yi = int64(i % 2)
		} else if rng.Float64() > pMaj {
			ai = 1 - yi
		}
		y[i], g[i] = yi, 2*yi+ai
		for j := 0; j < d; j++ {
			x[i*d+j] = float32(rng.NormFloat64())
		}
		x[i*d] += float32((float64(yi) - 0.5) * coreMu)
		x[i*d+1] = float32((float64(ai)-0.5)*4 + 0.5*rng.NormFloat64())
	}
	return Data{X: torch.FromSlice(x, int64(n), d), Labels: y, Groups: g}
}

func TestGroupDROBeatsERMOnWorstGroup(t *testing.T) {
	train := spurious(4000, 0.95, false, 1)
	test := spurious(4000, 0, true, 2)
	erm, err := LinearProbe(train, test, ProbeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dro, err := GroupDRO(train, test, DROConfig{Seed: 1, Steps: 1500})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ERM: avg %.3f worst %.3f %+v", erm.TestAcc, *erm.WorstGroupAcc, erm.PerGroup)
	t.Logf("DRO: avg %.3f worst %.3f %+v q %+v (%.2fs)", dro.TestAcc, dro.WorstGroupAcc, dro.PerGroup, dro.GroupWeights, dro.Seconds)
	if *erm.WorstGroupAcc > 0.4 {
		t.Errorf("the construction should defeat ERM: worst group %.3f", *erm.WorstGroupAcc)
	}
	if dro.WorstGroupAcc < *erm.WorstGroupAcc+0.3 {
		t.Errorf("DRO worst group %.3f, ERM %.3f: want a margin of 0.3", dro.WorstGroupAcc, *erm.WorstGroupAcc)
	}
	// discovered groups: cluster each class, DRO over (class, cluster)
	sg, err := DiscoverSubgroups(train, ClusterConfig{KMax: 4, Seed: 1, RawFeatures: true})
	if err != nil {
		t.Fatal(err)
	}
	sg.Score(train.Groups)
	disc := train
	disc.Groups = sg.Assign
	dd, err := GroupDRO(disc, test, DROConfig{Seed: 1, Steps: 1500})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DRO on %d discovered groups (ARI vs true %.3f): worst %.3f", len(sg.Pairs), *sg.ARI, dd.WorstGroupAcc)
	// measured: ERM 0.254, DRO true groups 0.817, DRO discovered groups 0.809
	if dd.WorstGroupAcc < *erm.WorstGroupAcc+0.2 {
		t.Errorf("DRO on discovered groups: worst group %.3f, ERM %.3f: want a margin of 0.2", dd.WorstGroupAcc, *erm.WorstGroupAcc)
	}
}

func TestGroupDROErrors(t *testing.T) {
	d := spurious(100, 0.9, false, 1)
	noGroups := d
	noGroups.Groups = nil
	for _, c := range []struct {
		tr, te Data
		cfg    DROConfig
		want   string
	}{
		{noGroups, d, DROConfig{}, "train has no groups"},
		{d, noGroups, DROConfig{}, "test has no groups"},
		{d, d, DROConfig{Eta: -1}, "eta"},
		{d, d, DROConfig{Steps: -5}, "steps"},
		{Data{X: d.X, Labels: d.Labels, Groups: d.Groups[:5]}, d, DROConfig{}, "5 labels for 100"},
	} {
		if _, err := GroupDRO(c.tr, c.te, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// GEORGE's protocol on the spurious construction: clusters of the training classes, their means
// assign the validation rows, and the head selected by worst found-group validation accuracy beats
// ERM on the worst true test group; Evaluate runs it when given a validation split.
func TestGeorgeSelectsOnFoundValidationGroups(t *testing.T) {
	train, val, test := spurious(3000, 0.95, false, 1), spurious(1000, 0.95, false, 3), spurious(2000, 0, true, 2)
	erm, err := LinearProbe(train, test, ProbeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := DiscoverSubgroups(train, ClusterConfig{KMax: 4, Seed: 1, RawFeatures: true})
	if err != nil {
		t.Fatal(err)
	}
	found, err := sg.AssignRows(Data{X: val.X, Labels: val.Labels})
	if err != nil {
		t.Fatal(err)
	}
	// the found validation groups agree with the true ones as well as the training clusters do
	trainARI, _ := AdjustedRandIndex(train.Groups, sg.Assign)
	valARI, _ := AdjustedRandIndex(val.Groups, found)
	t.Logf("ARI vs true groups: train clusters %.3f, assigned validation rows %.3f", trainARI, valARI)
	if valARI < trainARI-0.1 {
		t.Errorf("validation assignment ARI %.3f, training clusters %.3f", valARI, trainARI)
	}
	tr, va := train, Data{X: val.X, Labels: val.Labels, Groups: found}
	tr.Groups = sg.Assign
	g, err := George(tr, va, test, val.Groups, GeorgeConfig{DRO: DROConfig{Seed: 1, Steps: 600}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GEORGE: selected eta %g C %g step %d, val worst found %.3f true %.3f, test worst %.3f (ERM %.3f); grid %+v",
		g.Selected.Eta, g.Selected.Adjustment, g.Selected.SelectedStep, *g.Selected.ValWorstGroupAcc, *g.ValWorstTrueGroupAcc,
		g.Selected.WorstGroupAcc, *erm.WorstGroupAcc, g.Grid)
	if len(g.Grid) != 4 {
		t.Errorf("grid of %d settings, want the default 2 x 2", len(g.Grid))
	}
	for _, trial := range g.Grid {
		if trial.ValWorstFoundGroupAcc > *g.Selected.ValWorstGroupAcc {
			t.Errorf("selected %.3f on validation, but %+v is better", *g.Selected.ValWorstGroupAcc, trial)
		}
	}
	if g.Selected.WorstGroupAcc < *erm.WorstGroupAcc+0.2 {
		t.Errorf("GEORGE worst test group %.3f, ERM %.3f: want a margin of 0.2", g.Selected.WorstGroupAcc, *erm.WorstGroupAcc)
	}
	r, err := Evaluate(Inputs{Train: train.X, Test: test.X, TrainLabels: train.Labels, TestLabels: test.Labels,
		TrainGroups: train.Groups, TestGroups: test.Groups, Val: val.X, ValLabels: val.Labels, ValGroups: val.Groups},
		Config{Cluster: ClusterConfig{KMax: 4, Seed: 1, RawFeatures: true}, George: GeorgeConfig{DRO: DROConfig{Seed: 1, Steps: 600}},
			DRO: DROConfig{Steps: 200}})
	if err != nil {
		t.Fatal(err)
	}
	if r.George == nil || r.George.Selected.WorstGroupAcc != g.Selected.WorstGroupAcc || !strings.Contains(r.Markdown(), "GEORGE") {
		t.Errorf("Evaluate's GEORGE section %+v differs from the direct run (worst %.3f)", r.George, g.Selected.WorstGroupAcc)
	}
}
