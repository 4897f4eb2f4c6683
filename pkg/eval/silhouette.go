package eval

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Silhouette is the mean silhouette coefficient (Euclidean) of the rows of x under labels, as
// sklearn's silhouette_score; points in singleton clusters score 0. With sample > 0 and N > sample
// it is computed on a random subsample of that many rows (seeded). Needs 2 <= #clusters <= n-1.
func Silhouette(x *torch.Tensor, labels []int64, sample int, seed int64) (float64, error) {
	var s float64
	err := guard("silhouette", func() error {
		n, _, err := checkMatrix("silhouette", x)
		if err != nil {
			return err
		}
		if err := checkLabels("silhouette labels", labels, n, true); err != nil {
			return err
		}
		idx := subsample(int(n), sample, rand.New(rand.NewSource(seed)))
		xs := floatFeatures(x)
		lab := labels
		if len(idx) < int(n) {
			xs = xs.IndexSelect(0, longOn(toInt64(idx), xs.Device()))
			lab = make([]int64, len(idx))
			for i, j := range idx {
				lab[i] = labels[j]
			}
		}
		s, err = silhouette(xs, lab)
		return err
	})
	return s, err
}

// silhouette computes the exact silhouette of the rows xs under lab (inside a guard).
func silhouette(xs *torch.Tensor, lab []int64) (float64, error) {
	return silhouetteOf(xs, nil, lab)
}

// denseSilhouetteRows is the most rows whose [m, m] float64 distances silhouetteDistances keeps
// (128 MiB); above it they are recomputed in row blocks for every labelling.
const denseSilhouetteRows = 4096

// silhouetteDistances are the pairwise distances of a fixed set of rows that several labellings are
// scored on (clusterClass tries every k on one subsample): one dense matrix computed once when it is
// small, the rows themselves otherwise, so memory stays linear in the rows.
type silhouetteDistances struct{ x, dist *torch.Tensor }

func newSilhouetteDistances(x *torch.Tensor) silhouetteDistances {
	x = x.To(torch.Float64)
	if x.Size(0) <= denseSilhouetteRows {
		return silhouetteDistances{dist: torch.CDist(x, x)}
	}
	return silhouetteDistances{x: x}
}

// score is the silhouette of the rows under lab.
func (s silhouetteDistances) score(lab []int64) (float64, error) {
	return silhouetteOf(s.x, s.dist, lab)
}

// silhouetteBlockElems bounds one block of distances (128 MiB of float64); a variable for the tests.
var silhouetteBlockElems = 1 << 24

// silhouetteOf is the silhouette from the rows xs, whose distances it computes in blocks of rows
// ([B, m], about 128 MiB), or from their precomputed distance matrix dist.
func silhouetteOf(xs, dist *torch.Tensor, lab []int64) (float64, error) {
	m := len(lab)
	dense := map[int64]int64{}
	ids := make([]int64, m)
	for i, l := range lab {
		if _, ok := dense[l]; !ok {
			dense[l] = int64(len(dense))
		}
		ids[i] = dense[l]
	}
	k := len(dense)
	if k < 2 || k > m-1 {
		return 0, fmt.Errorf("silhouette needs 2 <= number of clusters <= samples-1, got %d clusters for %d samples", k, m)
	}
	counts := make([]float64, k)
	for _, c := range ids {
		counts[c]++
	}
	var dev torch.Device
	var x64 *torch.Tensor
	if dist != nil {
		dev, dist = dist.Device(), dist.To(torch.Float64)
	} else {
		dev, x64 = xs.Device(), xs.To(torch.Float64)
	}
	oh := longOn(ids, dev).OneHot(int64(k)).To(torch.Float64)
	var total float64
	// blocks of rows bound the [B, m] distance matrix
	block := int64(max(1, silhouetteBlockElems/m))
	for start := int64(0); start < int64(m); start += block {
		b := min(block, int64(m)-start)
		torch.WithScope(func() {
			var d *torch.Tensor // [b, m]
			if dist != nil {
				d = dist.Narrow(0, start, b)
			} else {
				d = torch.CDist(x64.Narrow(0, start, b), x64)
			}
			sums := d.MM(oh).Float64s() // [b, k] distance sums per cluster
			for r := int64(0); r < b; r++ {
				i := start + r
				own := ids[i]
				if counts[own] <= 1 {
					continue // singleton: s = 0
				}
				a := sums[r*int64(k)+own] / (counts[own] - 1)
				bmin := math.Inf(1)
				for c := 0; c < k; c++ {
					if int64(c) != own {
						bmin = math.Min(bmin, sums[r*int64(k)+int64(c)]/counts[c])
					}
				}
				if den := math.Max(a, bmin); den > 0 {
					total += (bmin - a) / den
				}
			}
		})
	}
	return total / float64(m), nil
}
