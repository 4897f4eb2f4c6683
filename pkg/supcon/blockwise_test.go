package supcon

import (
	"fmt"
	"math"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// The blockwise path agrees with the independent PyTorch implementation on every committed case,
// with blocks of 3 anchor rows (so every case spans several blocks, some ending mid-sample).
func TestBlockwiseMatchesPyTorchReference(t *testing.T) { checkReferenceCases(t, PathBlockwise, 3) }

// lossAndGrad returns a loss's value and its gradient with respect to z (a fresh leaf).
func lossAndGrad(z0 *torch.Tensor, f func(*torch.Tensor) *torch.Tensor) (float64, []float64) {
	z := z0.Detach().Clone().SetRequiresGrad(true)
	loss := f(z)
	loss.Backward()
	return loss.Item(), z.Grad().Float64s()
}

// Blockwise and dense give the same values and gradients on batches larger than the fixtures, with
// anchor subsets (data parallelism), both denominators, a composed objective (alpha SupCon +
// (1 - alpha) cNCE from Terms, as training uses it), one view, and block sizes that do not divide
// the rows.
func TestBlockwiseMatchesDense(t *testing.T) {
	type setup struct {
		n, v, d, start, count, block int64
		classes                      int64
	}
	setups := []setup{
		{n: 96, v: 2, d: 16, block: 7, classes: 5},
		{n: 64, v: 3, d: 8, start: 16, count: 24, block: 10, classes: 4},
		{n: 80, v: 1, d: 12, block: 33, classes: 6},
		{n: 50, v: 2, d: 8, start: 49, count: 1, block: 1, classes: 3},
		{n: 40, v: 2, d: 8, block: 0, classes: 40}, // every sample its own class: SupCon has no positive
	}
	for i, su := range setups {
		for _, dt := range []torch.DType{torch.Float64, torch.Float32} {
			tol := 1e-10
			if dt == torch.Float32 {
				tol = 2e-5
			}
			for _, denom := range []Denominator{DenomAll, DenomNegatives} {
				t.Run(fmt.Sprintf("%d/%v/%s", i, dt, denom), func(t *testing.T) {
					torch.WithScope(func() {
						torch.ManualSeed(uint64(i + 1))
						z0 := torch.Randn([]int64{su.n, su.v, su.d}, dt, torch.CPU)
						y := torch.Randint(0, su.classes, []int64{su.n}, torch.Int64, torch.CPU)
						if su.classes == su.n {
							y = torch.Arange(0, float64(su.n), 1, torch.Int64, torch.CPU)
						}
						views := func(z *torch.Tensor, p Path) Views {
							return Views{Z: z, Labels: y, AnchorStart: su.start, AnchorCount: su.count, Path: p, BlockRows: su.block}
						}
						objectives := map[string]func(*torch.Tensor, Path) *torch.Tensor{
							"supcon": func(z *torch.Tensor, p Path) *torch.Tensor { return SupCon(views(z, p), 0.3, denom) },
							"cnce":   func(z *torch.Tensor, p Path) *torch.Tensor { return CNCE(views(z, p), 0.3) },
							"simclr": func(z *torch.Tensor, p Path) *torch.Tensor { return SimCLR(views(z, p), 0.3) },
							"terms": func(z *torch.Tensor, p Path) *torch.Tensor {
								sc, cn := Terms(views(z, p), 0.3, denom)
								return sc.MulScalar(0.7).Add(cn.MulScalar(0.3))
							},
						}
						for name, f := range objectives {
							dv, dg := lossAndGrad(z0, func(z *torch.Tensor) *torch.Tensor { return f(z, PathDense) })
							bv, bg := lossAndGrad(z0, func(z *torch.Tensor) *torch.Tensor { return f(z, PathBlockwise) })
							if e := relErr(bv, dv, 1e-3); e > tol {
								t.Fatalf("%s: blockwise %.12g, dense %.12g (relative error %.2g)", name, bv, dv, e)
							}
							var maxDiff, maxRef float64
							for k := range dg {
								maxDiff = math.Max(maxDiff, math.Abs(bg[k]-dg[k]))
								maxRef = math.Max(maxRef, math.Abs(dg[k]))
							}
							if maxDiff > tol*math.Max(maxRef, 1e-3) {
								t.Fatalf("%s gradient: max difference %.3g against max |dense| %.3g", name, maxDiff, maxRef)
							}
						}
					})
				})
			}
		}
	}
}

// Under no-grad (analyze) the blockwise path returns plain values; AllTerms' three losses, on the
// blockwise path and on the dense one, equal the separate dense ones.
func TestAllTermsWithoutGrad(t *testing.T) {
	torch.WithScope(func() {
		torch.ManualSeed(3)
		z := torch.Randn([]int64{30, 2, 8}, torch.Float64, torch.CPU)
		y := torch.Randint(0, 4, []int64{30}, torch.Int64, torch.CPU)
		dense := Views{Z: z, Labels: y, Path: PathDense}
		for _, path := range []Path{PathBlockwise, PathDense} {
			v := Views{Z: z, Labels: y, Path: path, BlockRows: 4}
			var sc, cn, sim *torch.Tensor
			torch.NoGrad(func() { sc, cn, sim = AllTerms(v, 0.5, DenomNegatives) })
			if sc.RequiresGrad() {
				t.Fatalf("path %d: a no-grad loss requires grad", path)
			}
			for name, pair := range map[string][2]*torch.Tensor{
				"supcon": {sc, SupCon(dense, 0.5, DenomNegatives)},
				"cnce":   {cn, CNCE(dense, 0.5)},
				"simclr": {sim, SimCLR(dense, 0.5)},
			} {
				if e := relErr(pair[0].Item(), pair[1].Item(), 1e-3); e > 1e-12 {
					t.Errorf("path %d, %s: AllTerms %.15g, dense %.15g", path, name, pair[0].Item(), pair[1].Item())
				}
			}
		}
	})
}

// PathAuto switches at DenseMaxPairs anchor x candidate rows.
func TestAutoPathThreshold(t *testing.T) {
	torch.WithScope(func() {
		y := torch.Zeros([]int64{2048}, torch.Int64, torch.CPU)
		z := torch.Zeros([]int64{2048, 2, 1}, torch.Float32, torch.CPU) // 4,096 rows: exactly the limit
		if (Views{Z: z, Labels: y}).useBlockwise() {
			t.Error("4,096 x 4,096 rows went blockwise")
		}
		if !(Views{Z: z, Labels: y, Path: PathBlockwise}).useBlockwise() {
			t.Error("PathBlockwise ignored")
		}
		y2 := torch.Zeros([]int64{2049}, torch.Int64, torch.CPU)
		z2 := torch.Zeros([]int64{2049, 2, 1}, torch.Float32, torch.CPU)
		if !(Views{Z: z2, Labels: y2}).useBlockwise() {
			t.Error("4,098 x 4,098 rows stayed dense")
		}
		if (Views{Z: z2, Labels: y2, Path: PathDense}).useBlockwise() {
			t.Error("PathDense ignored")
		}
	})
}
