package supcon

import (
	"fmt"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Path selects how a loss walks the anchor x candidate similarities.
type Path int

const (
	// PathAuto is dense up to DenseMaxPairs anchor x candidate rows and blockwise above.
	PathAuto Path = iota
	// PathDense builds the whole similarity matrix once and lets autograd differentiate it: the
	// straightforward formulation, which also supports higher-order gradients.
	PathDense
	// PathBlockwise walks blocks of anchor rows, computing each block's loss and its exact gradient
	// together and freeing the block before the next: memory grows linearly with the batch.
	PathBlockwise
)

// ParsePath reads auto, dense or blockwise (the speed.supcon_path setting; unset means auto).
func ParsePath(s string) (Path, error) {
	switch s {
	case "auto", "":
		return PathAuto, nil
	case "dense":
		return PathDense, nil
	case "blockwise":
		return PathBlockwise, nil
	}
	return PathAuto, fmt.Errorf("SupCon path %q: want auto, dense or blockwise", s)
}

// DenseMaxPairs is where PathAuto switches to the blockwise path: 4,096 x 4,096 rows, where a dense
// float32 [M, M] matrix is 64 MiB and the dense path holds several (docs/losses.md counts them).
const DenseMaxPairs = 1 << 24

// blockElems bounds one block's [B, M] matrices when Views.BlockRows is 0 (16 MiB each in float32).
const blockElems = 1 << 22

func (v Views) useBlockwise() bool {
	if v.checkShapes() != nil {
		return false // the dense path reports the error
	}
	switch v.Path {
	case PathDense:
		return false
	case PathBlockwise:
		return true
	}
	_, count := v.anchors()
	rows := v.Z.Size(0) * v.Z.Size(1)
	return count*v.Z.Size(1)*rows > DenseMaxPairs
}

// wanted says which losses one blockwise pass computes.
type wanted struct{ supcon, cnce, simclr bool }

// losses are the scalar results of one blockwise pass (nil where not wanted).
type losses struct{ supcon, cnce, simclr *torch.Tensor }

// accum sums one loss over the blocks: per-anchor losses and counts of anchors with a positive, and
// (for the gradient) dSum/dz_hat [M, D] before the division by the count and tau.
type accum struct{ sum, count, g *torch.Tensor }

func newAccum(rows, d int64, dt torch.DType, dev torch.Device, grad bool) *accum {
	a := &accum{sum: torch.Zeros(nil, dt, dev), count: torch.Zeros(nil, dt, dev)}
	if grad {
		a.g = torch.Zeros([]int64{rows, d}, dt, dev)
	}
	return a
}

// add takes one block's per-anchor losses [B, 1], validity [B, 1] and weights w = d loss_a / d s [B, M]
// (already zero on invalid rows); za [B, D] are the block's normalised anchors, first their row.
func (a *accum) add(loss, valid, w, za, cand *torch.Tensor, first int64) {
	a.sum.AddInPlace(torch.Where(valid, loss, torch.Zeros(nil, loss.DType(), loss.Device())).Sum())
	a.count.AddInPlace(valid.To(loss.DType()).Sum())
	if a.g != nil {
		// s = za cand^T / tau: the candidates get w^T za, the anchor rows w cand (tau applied at the end)
		a.g.AddInPlace(w.T().MM(za))
		a.g.Narrow(0, first, za.Size(0)).AddInPlace(w.MM(cand))
	}
}

// result is the mean over anchors with a positive (0 when none has one); with a gradient, a
// surrogate whose value is that mean and whose gradient with respect to zhat is the accumulated one:
// (zhat * G).sum() - its detached self + value.
func (a *accum) result(zhat *torch.Tensor, tau float64) *torch.Tensor {
	n := a.count.ClampMin(1)
	value := a.sum.Div(n)
	if a.g == nil {
		return value
	}
	var g *torch.Tensor
	torch.NoGrad(func() { g = a.g.Div(n.MulScalar(tau)) })
	sur := zhat.Mul(g).Sum()
	return sur.Sub(sur.Detach()).Add(value)
}

// blockwiseLosses computes the wanted losses over blocks of anchor rows. Each block's similarities
// [B, M] are complete rows, so every log-sum-exp is exact within the block; the gradient with
// respect to the normalised embeddings is accumulated analytically, so nothing [M, M] is stored for
// the backward pass (which is only the normalisation's).
func blockwiseLosses(v Views, tau float64, denom Denominator, want wanted) losses {
	checkLossInputs(v, tau)
	n, nv, d := v.Z.Size(0), v.Z.Size(1), v.Z.Size(2)
	start, count := v.anchors()
	rows, first, nRows := n*nv, start*nv, count*nv
	dev, dt := v.Z.Device(), v.Z.DType()
	grad := torch.GradEnabled() && v.Z.RequiresGrad()
	zhat := v.Z.Reshape(rows, d).Normalize(2, 1, 1e-12)

	var sup, cn, sim *accum
	torch.NoGrad(func() {
		if want.supcon {
			sup = newAccum(rows, d, dt, dev, grad)
		}
		if want.cnce {
			cn = newAccum(rows, d, dt, dev, grad)
		}
		if want.simclr {
			sim = newAccum(rows, d, dt, dev, grad)
		}
		cand := zhat.Detach()
		sample := torch.Arange(0, float64(n), 1, torch.Int64, dev).Unsqueeze(1).Expand(n, nv).Reshape(rows)
		label := v.Labels.To(torch.Int64).Unsqueeze(1).Expand(n, nv).Reshape(rows)
		col := torch.Arange(0, float64(rows), 1, torch.Int64, dev).Unsqueeze(0)
		block := v.BlockRows
		if block <= 0 {
			block = max(1, blockElems/rows)
		}
		for r := first; r < first+nRows; r += block {
			b := min(block, first+nRows-r)
			torch.WithScope(func() {
				za := cand.Narrow(0, r, b)
				s := za.MM(cand.T()).DivScalar(tau) // [b, M]
				notSelf := torch.Arange(float64(r), float64(r+b), 1, torch.Int64, dev).Unsqueeze(1).Ne(col)
				sameClass := label.Narrow(0, r, b).Unsqueeze(1).Eq(label.Unsqueeze(0)).LogicalAnd(notSelf)
				var sameSample *torch.Tensor
				if want.cnce || want.simclr {
					sameSample = sample.Narrow(0, r, b).Unsqueeze(1).Eq(sample.Unsqueeze(0)).LogicalAnd(notSelf)
				}
				if sup != nil {
					var loss, valid, w *torch.Tensor
					if denom == DenomNegatives {
						loss, valid, w = negativesBlock(s, sameClass, notSelf, grad)
					} else {
						loss, valid, w = infoNCEBlock(s, sameClass, notSelf, grad)
					}
					sup.add(loss, valid, w, za, cand, r)
				}
				if cn != nil {
					loss, valid, w := infoNCEBlock(s, sameSample, sameClass, grad)
					cn.add(loss, valid, w, za, cand, r)
				}
				if sim != nil {
					loss, valid, w := infoNCEBlock(s, sameSample, notSelf, grad)
					sim.add(loss, valid, w, za, cand, r)
				}
			})
		}
	})
	var out losses
	if sup != nil {
		out.supcon = sup.result(zhat, tau)
	}
	if cn != nil {
		out.cnce = cn.result(zhat, tau)
	}
	if sim != nil {
		out.simclr = sim.result(zhat, tau)
	}
	return out
}

// infoNCEBlock is infoNCE on a block of rows: per-anchor losses LSE_den s - mean_pos s [B, 1],
// whether the anchor has a positive [B, 1], and (with grad) d loss_a / d s = softmax_den(s) - pos/|pos|.
func infoNCEBlock(s, pos, den *torch.Tensor, grad bool) (loss, valid, w *torch.Tensor) {
	notDen := den.LogicalNot()
	lse := s.MaskedFill(notDen, maskedLogit).LogSumExp(true, 1)
	posF := pos.To(s.DType())
	numPos := posF.SumDims(true, 1).ClampMin(1)
	loss = lse.Sub(s.Mul(posF).SumDims(true, 1).Div(numPos))
	valid = pos.Any(true, 1)
	if grad {
		w = s.Sub(lse).Exp().MaskedFill(notDen, 0).Sub(posF.Div(numPos)).Mul(valid.To(s.DType()))
	}
	return loss, valid, w
}

// negativesBlock is negativesDenominator on a block of rows. With nlse = LSE over the other classes
// and sigma_p = sigmoid(nlse - s_p), d loss_a / d s is -sigma_p / |P| on a positive p and
// exp(s_b - nlse) * sum_p sigma_p / |P| on a negative b.
func negativesBlock(s, pos, notSelf *torch.Tensor, grad bool) (loss, valid, w *torch.Tensor) {
	notNeg := pos.LogicalOr(notSelf.LogicalNot())
	negLSE := s.MaskedFill(notNeg, maskedLogit).LogSumExp(true, 1)
	hi := s.Maximum(negLSE)
	logDen := hi.Add(s.Sub(negLSE).Abs().Neg().Exp().Log1p())
	posF := pos.To(s.DType())
	numPos := posF.SumDims(true, 1).ClampMin(1)
	loss = logDen.Sub(s).Mul(posF).SumDims(true, 1).Div(numPos)
	valid = pos.Any(true, 1)
	if grad {
		sig := negLSE.Sub(s).Sigmoid().Mul(posF)
		negW := s.Sub(negLSE).Exp().MaskedFill(notNeg, 0).Mul(sig.SumDims(true, 1))
		w = negW.Sub(sig).Div(numPos).Mul(valid.To(s.DType()))
	}
	return loss, valid, w
}
