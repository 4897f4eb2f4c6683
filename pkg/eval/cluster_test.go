package eval

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// subclassData: 2 coarse classes, each a mixture of 3 Gaussian subclasses (sizes 200/100/50) with
// means 6*e_j in R^16 (j = fine label) and unit noise, as METHOD.md's cheap check.
func subclassData(seed int64) (*torch.Tensor, []int64, []int64) {
	rng := rand.New(rand.NewSource(seed))
	const d = 16
	var x []float32
	var coarse, fine []int64
	for c := 0; c < 2; c++ {
		for s, n := range []int{200, 100, 50} {
			f := c*3 + s
			for i := 0; i < n; i++ {
				row := make([]float32, d)
				for j := range row {
					row[j] = float32(rng.NormFloat64())
				}
				row[f] += 6
				x = append(x, row...)
				coarse = append(coarse, int64(c))
				fine = append(fine, int64(f))
			}
		}
	}
	return torch.FromSlice(x, int64(len(coarse)), d), coarse, fine
}

func TestDiscoverSubgroupsRecoversSubclasses(t *testing.T) {
	x, coarse, fine := subclassData(1)
	for _, method := range []string{"kmeans", "gmm"} {
		s, err := DiscoverSubgroups(Data{X: x, Labels: coarse}, ClusterConfig{Method: method, KMax: 6, Seed: 1})
		if err != nil {
			t.Fatal(method, err)
		}
		if err := s.Score(fine); err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Classes {
			if c.K != 3 {
				t.Errorf("%s class %d: chose k = %d (scores %+v), want 3", method, c.Class, c.K, c.Scores)
			}
		}
		t.Logf("%s: ARI %.4f NMI %.4f per-class ARI %.4f, groups %d", method, *s.ARI, *s.NMI, *s.PerClassARI, len(s.Pairs))
		if *s.ARI < 0.98 || *s.PerClassARI < 0.98 {
			t.Errorf("%s: ARI %.4f per-class %.4f, want ~1", method, *s.ARI, *s.PerClassARI)
		}
		// global ids index (class, cluster) pairs
		for i, a := range s.Assign {
			if s.Pairs[a][0] != coarse[i] || s.Pairs[a][1] != s.Cluster[i] {
				t.Fatalf("row %d: group %d is pair %v, row has class %d cluster %d", i, a, s.Pairs[a], coarse[i], s.Cluster[i])
			}
		}
		again, _ := DiscoverSubgroups(Data{X: x, Labels: coarse}, ClusterConfig{Method: method, KMax: 6, Seed: 1})
		for i := range s.Assign {
			if again.Assign[i] != s.Assign[i] {
				t.Fatalf("%s: same seed, different clustering", method)
			}
		}
	}
}

func TestDiscoverSubgroupsSmallAndBad(t *testing.T) {
	// a class of 2 rows stays one cluster
	x := torch.FromSlice([]float32{1, 0, 0.9, 0.1, 0, 1, 0.1, 0.9, 0, -1, 1, 1, -1, 0}, 7, 2)
	s, err := DiscoverSubgroups(Data{X: x, Labels: []int64{0, 0, 1, 1, 1, 1, 1}}, ClusterConfig{KMax: 3})
	if err != nil {
		t.Fatal(err)
	}
	if s.Classes[0].K != 1 || len(s.Classes) != 2 {
		t.Errorf("classes %+v", s.Classes)
	}
	for _, c := range []struct {
		cfg  ClusterConfig
		want string
	}{
		{ClusterConfig{Method: "dbscan"}, "dbscan"},
		{ClusterConfig{KMin: 5, KMax: 3}, "kmin <= kmax"},
		{ClusterConfig{KMin: -1}, "kmin"},
	} {
		if _, err := DiscoverSubgroups(Data{X: x, Labels: []int64{0, 0, 1, 1, 1, 1, 1}}, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := DiscoverSubgroups(Data{X: x, Labels: []int64{0, 1}}, ClusterConfig{}); err == nil {
		t.Error("mismatched labels accepted")
	}
	if err := s.Score([]int64{1, 2}); err == nil {
		t.Error("Score accepted a short reference")
	}
}

func TestSubgroupAccuracyByHand(t *testing.T) {
	// cluster 5 holds labels {0, 0, 1}: maps to 0, 2 right; cluster 7 holds {1, 1, 2}: maps to 1, 2 right
	if got := majorityMappingAccuracy([]int64{0, 0, 1, 1, 1, 2}, []int64{5, 5, 5, 7, 7, 7}); got != 4.0/6 {
		t.Errorf("subgroup accuracy %v, want 4/6", got)
	}
}

// Where a dataset has true groups and fine labels (coloured MNIST: groups = (class, colour), fine =
// digit), Evaluate scores the clusters against the groups, and against the fine labels as well.
func TestEvaluateScoresClustersAgainstGroups(t *testing.T) {
	x, coarse, fine := subclassData(1)
	groups := make([]int64, len(fine))
	for i, f := range fine {
		groups[i] = 2 * coarse[i]
		if f%3 == 0 { // the largest subclass of each class is group 2c, the other two 2c+1
			groups[i]++
		}
	}
	in := Inputs{Train: x, Test: x, TrainLabels: coarse, TestLabels: coarse, TrainFine: fine, TestFine: fine,
		TrainGroups: groups, TestGroups: groups}
	r, err := Evaluate(in, Config{Cluster: ClusterConfig{KMax: 6, Seed: 1}, SkipDRO: true})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Subgroups
	if s.Reference != "groups" || s.VsFine == nil || s.VsFine.Reference != "fine" {
		t.Fatalf("reference %q, vs fine %+v: want groups, then fine", s.Reference, s.VsFine)
	}
	wantG, _ := AdjustedRandIndex(groups, s.Assign)
	wantF, _ := AdjustedRandIndex(fine, s.Assign)
	if *s.ARI != wantG || *s.VsFine.ARI != wantF {
		t.Errorf("ARI %v vs groups (want %v), %v vs fine (want %v)", *s.ARI, wantG, *s.VsFine.ARI, wantF)
	}
	// three clusters per class recover the fine labels exactly; against the groups they over-split
	if *s.VsFine.SubgroupAcc < 0.98 || *s.SubgroupAcc < 0.98 || *s.VsFine.PerClassARI < 0.98 || *s.PerClassARI > 0.9 {
		t.Errorf("vs fine: acc %v per-class ARI %v; vs groups: acc %v per-class ARI %v", *s.VsFine.SubgroupAcc,
			*s.VsFine.PerClassARI, *s.SubgroupAcc, *s.PerClassARI)
	}
	if md := r.Markdown(); !strings.Contains(md, "Against the true groups") || !strings.Contains(md, "Against the fine labels") {
		t.Errorf("report does not name both references:\n%s", md)
	}
}
