// Package eval evaluates frozen representations (METHOD.md, "Evaluation protocols"): a linear probe
// on precomputed features, temperature-weighted kNN, per-class subgroup discovery (k-means or a
// diagonal Gaussian mixture, k chosen by silhouette) scored with ARI, NMI and subgroup identification
// accuracy, a group DRO probe, GEORGE's protocol (group DRO over the found clusters, selected on
// validation by the worst found group), and
// spread diagnostics (intra/inter-class cosine, alignment, uniformity). Report gathers them into a
// metrics.json document with stable snake_case keys and renders Markdown tables.
//
// Inputs are feature matrices [N, D] as *torch.Tensor (any float dtype, any device; work happens on
// the tensor's device) with Go slices of int64 labels. Every exported function recovers libtorch
// errors (and any other panic) into an ordinary error; none panics.
package eval

import (
	"fmt"
	"math/rand"
	"runtime/debug"
	"sort"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Data is one split of frozen features with its targets.
type Data struct {
	X      *torch.Tensor // [N, D] features
	Labels []int64       // [N] targets, each >= 0
	Groups []int64       // optional [N] group ids (e.g. true subgroups); per-group accuracy uses them
}

// GroupAcc is the accuracy on one class or group.
type GroupAcc struct {
	ID       int64   `json:"id"`
	N        int     `json:"n"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
}

// guard runs f inside a no-grad scope and turns any panic into an error naming op.
func guard(op string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*torch.Error); ok {
				err = fmt.Errorf("eval: %s: %w", op, e)
				return
			}
			err = fmt.Errorf("eval: %s: internal error: %v\n%s", op, r, debug.Stack())
		}
	}()
	terr := torch.Catch(func() {
		torch.NoGrad(func() {
			torch.WithScope(func() { err = f() })
		})
	})
	if terr != nil {
		return fmt.Errorf("eval: %s: %w", op, terr)
	}
	if err != nil {
		return fmt.Errorf("eval: %s: %w", op, err)
	}
	return nil
}

// checkMatrix validates a feature matrix and returns its shape.
func checkMatrix(name string, x *torch.Tensor) (n, d int64, err error) {
	if !x.Defined() {
		return 0, 0, fmt.Errorf("%s: features are nil (pass an [N, D] float tensor)", name)
	}
	if x.Dim() != 2 {
		return 0, 0, fmt.Errorf("%s: features have shape %v, want [N, D]", name, x.Shape())
	}
	if !x.DType().IsFloat() {
		return 0, 0, fmt.Errorf("%s: features are %v, want a float dtype", name, x.DType())
	}
	s := x.Shape()
	if s[0] == 0 || s[1] == 0 {
		return 0, 0, fmt.Errorf("%s: features have shape %v: need at least one row and one column", name, s)
	}
	return s[0], s[1], nil
}

// checkLabels validates a label vector against n rows.
func checkLabels(name string, labels []int64, n int64, required bool) error {
	if labels == nil && !required {
		return nil
	}
	if int64(len(labels)) != n {
		return fmt.Errorf("%s: %d labels for %d feature rows", name, len(labels), n)
	}
	for i, l := range labels {
		if l < 0 {
			return fmt.Errorf("%s: label %d at row %d is negative (labels must be 0..C-1)", name, l, i)
		}
	}
	return nil
}

// checkData validates a Data split and returns N and D.
// checkSplits checks a train and a test split of the same feature width; it returns their sizes and
// the width.
func checkSplits(train, test Data) (ntr, nte, d int64, err error) {
	if ntr, d, err = checkData("train", train); err != nil {
		return
	}
	var dte int64
	if nte, dte, err = checkData("test", test); err != nil {
		return
	}
	if d != dte {
		err = fmt.Errorf("train features have %d columns, test features %d", d, dte)
	}
	return
}

func checkData(name string, d Data) (int64, int64, error) {
	n, dim, err := checkMatrix(name, d.X)
	if err != nil {
		return 0, 0, err
	}
	if err := checkLabels(name+" labels", d.Labels, n, true); err != nil {
		return 0, 0, err
	}
	if err := checkLabels(name+" groups", d.Groups, n, false); err != nil {
		return 0, 0, err
	}
	return n, dim, nil
}

func maxLabel(ls ...[]int64) int64 {
	m := int64(-1)
	for _, l := range ls {
		for _, v := range l {
			if v > m {
				m = v
			}
		}
	}
	return m
}

// accuracyBy counts correct predictions per id (class or group), sorted by id.
func accuracyBy(ids, pred, truth []int64) []GroupAcc {
	type acc struct{ n, c int }
	m := map[int64]*acc{}
	for i, g := range ids {
		a := m[g]
		if a == nil {
			a = &acc{}
			m[g] = a
		}
		a.n++
		if pred[i] == truth[i] {
			a.c++
		}
	}
	out := make([]GroupAcc, 0, len(m))
	for g, a := range m {
		out = append(out, GroupAcc{ID: g, N: a.n, Correct: a.c, Accuracy: float64(a.c) / float64(a.n)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Accuracy is the share of pred that equals truth (0 for no rows).
func Accuracy(pred, truth []int64) float64 {
	if len(truth) == 0 {
		return 0
	}
	c := 0
	for i := range truth {
		if pred[i] == truth[i] {
			c++
		}
	}
	return float64(c) / float64(len(truth))
}

// worst returns the lowest accuracy among groups (0 when there are none).
func worst(gs []GroupAcc) float64 {
	if len(gs) == 0 {
		return 0
	}
	w := gs[0].Accuracy
	for _, g := range gs[1:] {
		if g.Accuracy < w {
			w = g.Accuracy
		}
	}
	return w
}

// floatFeatures returns x detached as float32, contiguous.
func floatFeatures(x *torch.Tensor) *torch.Tensor {
	return x.Detach().To(torch.Float32).Contiguous()
}

// longOn makes an int64 tensor of v on dev.
func longOn(v []int64, dev torch.Device) *torch.Tensor {
	return torch.FromSlice(v).On(dev)
}

// subsample returns up to max distinct indices of 0..n-1 (sorted), drawn with rng; all when n <= max.
func subsample(n, max int, rng *rand.Rand) []int {
	if max <= 0 || n <= max {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := rng.Perm(n)[:max]
	sort.Ints(idx)
	return idx
}

func toInt64(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// GroupAccuracies is the accuracy of predictions pred against truth within each group of ids, and the
// worst of them (the robustness literature's worst-group accuracy).
func GroupAccuracies(ids, pred, truth []int64) (per []GroupAcc, worstAcc float64) {
	per = accuracyBy(ids, pred, truth)
	return per, worst(per)
}
