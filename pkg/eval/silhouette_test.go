package eval

import (
	"math"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Both forms of silhouetteDistances (a dense matrix, and rows whose distances are recomputed in
// blocks, here of one or a few rows) give scikit-learn's silhouette on the committed fixtures.
func TestSilhouetteDistancesBlockwiseAgainstSklearn(t *testing.T) {
	f := loadFixtures(t)
	if len(f.Silhouette) == 0 {
		t.Fatal("no silhouette fixtures")
	}
	defer func(v int) { silhouetteBlockElems = v }(silhouetteBlockElems)
	for _, s := range f.Silhouette {
		torch.WithScope(func() {
			x := torch.FromSlice(s.X, s.N, s.D).To(torch.Float64)
			dense := newSilhouetteDistances(x)
			if dense.dist == nil {
				t.Fatalf("%s: %d rows were not kept dense", s.Name, s.N)
			}
			rows := silhouetteDistances{x: x}
			for _, elems := range []int{1, 3 * int(s.N), 1 << 24} {
				silhouetteBlockElems = elems
				for name, d := range map[string]silhouetteDistances{"dense": dense, "blockwise": rows} {
					got, err := d.score(s.Labels)
					if err != nil {
						t.Fatal(s.Name, err)
					}
					if math.Abs(got-s.Silhouette) > 1e-6 {
						t.Errorf("%s, %s, blocks of %d elements: silhouette %.9f, sklearn %.9f", s.Name, name, elems, got, s.Silhouette)
					}
				}
			}
		})
	}
}

// Above denseSilhouetteRows rows no [m, m] matrix is kept.
func TestSilhouetteDistancesLargeIsBlockwise(t *testing.T) {
	torch.WithScope(func() {
		d := newSilhouetteDistances(torch.Zeros([]int64{denseSilhouetteRows + 1, 2}, torch.Float32, torch.CPU))
		if d.dist != nil || d.x == nil {
			t.Fatal("a large silhouette set was kept as a dense matrix")
		}
	})
}
