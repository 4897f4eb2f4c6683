package eval

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// contingency builds the contingency table of two labelings (relabelled densely) and the row/column sums.
func contingency(a, b []int64) (table [][]float64, rows, cols []float64) {
	ia, ib := map[int64]int{}, map[int64]int{}
	for i := range a {
		if _, ok := ia[a[i]]; !ok {
			ia[a[i]] = len(ia)
		}
		if _, ok := ib[b[i]]; !ok {
			ib[b[i]] = len(ib)
		}
	}
	table = make([][]float64, len(ia))
	for i := range table {
		table[i] = make([]float64, len(ib))
	}
	rows, cols = make([]float64, len(ia)), make([]float64, len(ib))
	for i := range a {
		r, c := ia[a[i]], ib[b[i]]
		table[r][c]++
		rows[r]++
		cols[c]++
	}
	return table, rows, cols
}

func checkPair(a, b []int64) error {
	if len(a) != len(b) {
		return fmt.Errorf("eval: labelings have different lengths (%d and %d)", len(a), len(b))
	}
	if len(a) == 0 {
		return fmt.Errorf("eval: labelings are empty")
	}
	return nil
}

// AdjustedRandIndex is the adjusted Rand index of two labelings of the same points (sklearn's
// adjusted_rand_score, including its special case: 1 when the two agree on every pair).
func AdjustedRandIndex(truth, pred []int64) (float64, error) {
	if err := checkPair(truth, pred); err != nil {
		return 0, err
	}
	table, rows, cols := contingency(truth, pred)
	n := float64(len(truth))
	// pair confusion matrix, as sklearn.metrics.cluster.pair_confusion_matrix
	var sumSq float64
	for _, r := range table {
		for _, v := range r {
			sumSq += v * v
		}
	}
	var rowSq, colSq float64
	for _, v := range rows {
		rowSq += v * v
	}
	for _, v := range cols {
		colSq += v * v
	}
	tp := sumSq - n
	fp := colSq - sumSq // ordered pairs together in pred, apart in truth
	fn := rowSq - sumSq
	tn := n*n - fp - fn - sumSq
	if fn == 0 && fp == 0 {
		return 1, nil
	}
	return 2 * (tp*tn - fn*fp) / ((tp+fn)*(fn+tn) + (tp+fp)*(fp+tn)), nil
}

func entropy(counts []float64, n float64) float64 {
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := c / n
			h -= p * math.Log(p)
		}
	}
	return h
}

// NormalizedMutualInfo is the mutual information normalised by the arithmetic mean of the two
// entropies (sklearn's normalized_mutual_info_score default); 1 when both labelings are one cluster.
func NormalizedMutualInfo(truth, pred []int64) (float64, error) {
	if err := checkPair(truth, pred); err != nil {
		return 0, err
	}
	table, rows, cols := contingency(truth, pred)
	if len(rows) == 1 && len(cols) == 1 {
		return 1, nil
	}
	n := float64(len(truth))
	mi := 0.0
	for i, r := range table {
		for j, v := range r {
			if v > 0 {
				mi += v / n * (math.Log(v*n) - math.Log(rows[i]*cols[j]))
			}
		}
	}
	if mi < 0 {
		mi = 0
	}
	hu, hv := entropy(rows, n), entropy(cols, n)
	den := (hu + hv) / 2
	if mi == 0 {
		return 0, nil
	}
	return mi / math.Max(den, 2.220446049250313e-16), nil
}

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

// silhouetteDist is silhouette from a precomputed [m, m] Euclidean distance matrix.
func silhouetteDist(dist *torch.Tensor, lab []int64) (float64, error) {
	return silhouetteOf(nil, dist, lab)
}

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
	block := int64(max(1, (1<<24)/m))
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
