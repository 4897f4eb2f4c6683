package eval

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// SpreadConfig configures the spread diagnostics.
type SpreadConfig struct {
	UniformityT      float64 // t in log E exp(-t ||f(x)-f(y)||^2); default 2
	UniformitySample int     // rows drawn for the uniformity (all pairs among them); default 2000
	AlignAlpha       float64 // alpha in E ||f(x)-f(x+)||^alpha; default 2
	Seed             int64
}

// SpreadInput holds the embeddings to diagnose: X [N, D] with Labels, and optionally two views of
// the same N' samples (View1[i], View2[i] a positive pair) for the alignment.
type SpreadInput struct {
	X            *torch.Tensor
	Labels       []int64
	View1, View2 *torch.Tensor
}

// Spread is how spread out the embeddings are, all on L2-normalised rows. Alignment is present only
// when two views were given.
type Spread struct {
	IntraClassCosine float64  `json:"intra_class_cosine"` // mean over same-class pairs i != j
	InterClassCosine float64  `json:"inter_class_cosine"` // mean over different-class pairs
	Alignment        *float64 `json:"alignment,omitempty"`
	AlignAlpha       float64  `json:"align_alpha"`
	Uniformity       float64  `json:"uniformity"`
	UniformityT      float64  `json:"uniformity_t"`
	UniformityRows   int      `json:"uniformity_rows"`
}

// SpreadDiagnostics computes the mean intra- and inter-class cosine through per-class sums of the
// normalised rows (O(N D)), the uniformity over all pairs of a capped random subsample, and the
// alignment of the two views when given.
func SpreadDiagnostics(in SpreadInput, cfg SpreadConfig) (*Spread, error) {
	var res *Spread
	err := guard("spread diagnostics", func() error {
		if cfg.UniformityT == 0 {
			cfg.UniformityT = 2
		}
		if cfg.UniformitySample == 0 {
			cfg.UniformitySample = 2000
		}
		if cfg.AlignAlpha == 0 {
			cfg.AlignAlpha = 2
		}
		if !(cfg.UniformityT > 0) || !(cfg.AlignAlpha > 0) || cfg.UniformitySample < 2 {
			return fmt.Errorf("spread settings: t %v and alpha %v must be positive, uniformity sample %d >= 2",
				cfg.UniformityT, cfg.AlignAlpha, cfg.UniformitySample)
		}
		n, _, err := checkData("features", Data{X: in.X, Labels: in.Labels})
		if err != nil {
			return err
		}
		if n < 2 {
			return fmt.Errorf("features have one row: need at least 2")
		}
		z := floatFeatures(in.X).To(torch.Float64).Normalize(2, 1, 1e-12)
		res = &Spread{AlignAlpha: cfg.AlignAlpha, UniformityT: cfg.UniformityT}
		res.IntraClassCosine, res.InterClassCosine, err = classCosines(z, in.Labels)
		if err != nil {
			return err
		}
		idx := subsample(int(n), cfg.UniformitySample, rand.New(rand.NewSource(cfg.Seed)))
		zs := z
		if len(idx) < int(n) {
			zs = z.IndexSelect(0, longOn(toInt64(idx), z.Device()))
		}
		res.UniformityRows = len(idx)
		res.Uniformity = uniformity(zs, cfg.UniformityT)
		if in.View1 != nil || in.View2 != nil {
			a, err := alignment(in.View1, in.View2, cfg.AlignAlpha)
			if err != nil {
				return err
			}
			res.Alignment = &a
		}
		return nil
	})
	return res, err
}

// classCosines returns the mean cosine over ordered same-class pairs (i != j) and over ordered
// different-class pairs, from per-class sums S_c: sum over same-class pairs = sum_c ||S_c||^2 - sum_i ||z_i||^2.
func classCosines(z *torch.Tensor, labels []int64) (intra, inter float64, err error) {
	c := maxLabel(labels) + 1
	oh := longOn(labels, z.Device()).OneHot(c).To(torch.Float64)
	sums := oh.T().MM(z)                                     // [C, D]
	perClassSq := sums.Square().SumDims(false, 1).Float64s() // ||S_c||^2
	selfSq := oh.T().MM(z.Square().SumDims(true, 1)).Float64s()
	total := sums.SumDims(false, 0).Square().Sum().Item() // ||sum_i z_i||^2
	counts := make([]float64, c)
	for _, l := range labels {
		counts[l]++
	}
	var same, samePairs, sameSum, nsq, n float64
	for k := range counts {
		same += perClassSq[k] - selfSq[k]
		samePairs += counts[k] * (counts[k] - 1)
		sameSum += perClassSq[k]
		nsq += counts[k] * counts[k]
		n += counts[k]
	}
	if samePairs == 0 {
		return 0, 0, fmt.Errorf("every class has a single row: the intra-class cosine is undefined")
	}
	diffPairs := n*n - nsq
	if diffPairs == 0 {
		return 0, 0, fmt.Errorf("all rows have one label: the inter-class cosine is undefined")
	}
	return same / samePairs, (total - sameSum) / diffPairs, nil
}

// uniformity is log mean_{i<j} exp(-t ||z_i - z_j||^2) over the rows of z (Wang & Isola), in blocks.
func uniformity(z *torch.Tensor, t float64) float64 {
	m := z.Size(0)
	block := max(1, (1<<22)/m)
	var lses []float64
	for s := int64(0); s < m; s += block {
		b := min(block, m-s)
		torch.WithScope(func() {
			zb := z.Narrow(0, s, b)
			d2 := zb.MM(z.T()).MulScalar(-2).AddScalar(2).ClampMin(0) // unit rows: ||a-b||^2 = 2 - 2 a.b
			// keep pairs (i, j) with j > i only
			rows := torch.Arange(float64(s), float64(s+b), 1, torch.Int64, z.Device()).Unsqueeze(1)
			cols := torch.Arange(0, float64(m), 1, torch.Int64, z.Device()).Unsqueeze(0)
			logits := d2.MulScalar(-t).MaskedFill(cols.Le(rows), math.Inf(-1))
			lses = append(lses, logits.Reshape(-1).LogSumExp(false, 0).Item()) // -Inf for the last row alone
		})
	}
	mx := math.Inf(-1)
	for _, v := range lses {
		mx = math.Max(mx, v)
	}
	var acc float64
	for _, v := range lses {
		acc += math.Exp(v - mx)
	}
	pairs := float64(m) * float64(m-1) / 2
	return mx + math.Log(acc) - math.Log(pairs)
}

// Alignment is E ||f(x) - f(x+)||^alpha over the positive pairs (view1[i], view2[i]) of L2-normalised
// embeddings (Wang & Isola 2020; alpha = 2 in their paper).
func Alignment(view1, view2 *torch.Tensor, alpha float64) (float64, error) {
	var a float64
	err := guard("alignment", func() error {
		var err error
		a, err = alignment(view1, view2, alpha)
		return err
	})
	return a, err
}

func alignment(view1, view2 *torch.Tensor, alpha float64) (float64, error) {
	if !(alpha > 0) {
		return 0, fmt.Errorf("alignment alpha %v: must be positive", alpha)
	}
	n1, d1, err := checkMatrix("view 1", view1)
	if err != nil {
		return 0, err
	}
	n2, d2, err := checkMatrix("view 2", view2)
	if err != nil {
		return 0, err
	}
	if n1 != n2 || d1 != d2 {
		return 0, fmt.Errorf("the two views have shapes [%d, %d] and [%d, %d]: they must match row for row", n1, d1, n2, d2)
	}
	a := floatFeatures(view1).To(torch.Float64).Normalize(2, 1, 1e-12)
	b := floatFeatures(view2).On(view1.Device()).To(torch.Float64).Normalize(2, 1, 1e-12)
	return a.Sub(b).Norm(false, 1).PowScalar(alpha).Mean().Item(), nil
}
