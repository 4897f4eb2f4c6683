package eval

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

type fixtures struct {
	Pairs []struct {
		Name        string
		Truth, Pred []int64
		ARI, NMI    float64
	}
	Silhouette []struct {
		Name       string
		N, D       int64
		X          []float32
		Labels     []int64
		Silhouette float64
	}
}

func loadFixtures(t *testing.T) fixtures {
	t.Helper()
	b, err := os.ReadFile("testdata/metrics_fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	var f fixtures
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestARINMIAgainstSklearn(t *testing.T) {
	f := loadFixtures(t)
	if len(f.Pairs) < 10 {
		t.Fatalf("only %d fixture pairs", len(f.Pairs))
	}
	for _, p := range f.Pairs {
		ari, err := AdjustedRandIndex(p.Truth, p.Pred)
		if err != nil {
			t.Fatal(p.Name, err)
		}
		nmi, err := NormalizedMutualInfo(p.Truth, p.Pred)
		if err != nil {
			t.Fatal(p.Name, err)
		}
		if math.Abs(ari-p.ARI) > 1e-10 || math.Abs(nmi-p.NMI) > 1e-10 {
			t.Errorf("%s: ARI %.12f (sklearn %.12f), NMI %.12f (sklearn %.12f)", p.Name, ari, p.ARI, nmi, p.NMI)
		}
	}
}

func TestSilhouetteAgainstSklearn(t *testing.T) {
	f := loadFixtures(t)
	for _, s := range f.Silhouette {
		x := torch.FromSlice(s.X, s.N, s.D)
		got, err := Silhouette(x, s.Labels, 0, 1)
		if err != nil {
			t.Fatal(s.Name, err)
		}
		if math.Abs(got-s.Silhouette) > 1e-6 {
			t.Errorf("%s: silhouette %.9f, sklearn %.9f", s.Name, got, s.Silhouette)
		}
		// a subsample as large as the set is the exact value
		sub, err := Silhouette(x, s.Labels, int(s.N), 1)
		if err != nil || sub != got {
			t.Errorf("%s: full-size subsample gives %v (%v), want %v", s.Name, sub, err, got)
		}
	}
}

func TestMetricErrors(t *testing.T) {
	if _, err := AdjustedRandIndex([]int64{0, 1}, []int64{0}); err == nil {
		t.Error("ARI accepted labelings of different lengths")
	}
	if _, err := NormalizedMutualInfo(nil, nil); err == nil {
		t.Error("NMI accepted empty labelings")
	}
	x := torch.FromSlice([]float32{0, 1, 2, 3}, 4, 1)
	if _, err := Silhouette(x, []int64{0, 0, 0, 0}, 0, 1); err == nil {
		t.Error("silhouette accepted a single cluster")
	}
	if _, err := Silhouette(x, []int64{0, 1}, 0, 1); err == nil {
		t.Error("silhouette accepted 2 labels for 4 rows")
	}
	if _, err := Silhouette(nil, []int64{0, 1}, 0, 1); err == nil {
		t.Error("silhouette accepted nil features")
	}
}
