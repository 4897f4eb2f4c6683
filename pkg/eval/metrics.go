package eval

import (
	"fmt"
	"math"
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
