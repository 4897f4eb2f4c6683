package supcon

import (
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// target is one result of a blockwise pass: the weighted sum of the losses, with the gradient of that
// sum (none when valueOnly, for logging).
type target struct {
	supcon, cnce, simclr float64
	valueOnly            bool
}

// blockwise computes each target on the blockwise path: in one fused pass where fusable, else by
// blockwiseLosses (one gradient per loss) combined.
func blockwise(v Views, tau float64, denom Denominator, targets []target) []*torch.Tensor {
	if fusable(v, tau, denom, targets) {
		return fusedLosses(v, tau, targets)
	}
	var want wanted
	for _, t := range targets {
		want.supcon, want.cnce, want.simclr = want.supcon || t.supcon != 0, want.cnce || t.cnce != 0, want.simclr || t.simclr != 0
	}
	l := blockwiseLosses(v, tau, denom, want)
	out := make([]*torch.Tensor, len(targets))
	for i, t := range targets {
		var sum *torch.Tensor
		for _, term := range []struct {
			w    float64
			loss *torch.Tensor
		}{{t.supcon, l.supcon}, {t.cnce, l.cnce}, {t.simclr, l.simclr}} {
			switch {
			case term.w == 0:
			case sum == nil:
				sum = term.loss.MulScalar(term.w)
			default:
				sum = sum.Add(term.loss.MulScalar(term.w))
			}
		}
		if t.valueOnly {
			sum = sum.Detach()
		}
		out[i] = sum
	}
	return out
}

// fusedShiftRange is how far below the fixed shift 1/tau a similarity may lie (2/tau) before exp of
// the difference could underflow: the fused pass needs tau >= 2/range (float32: 1/30, float64: 1/300).
var fusedShiftRange = map[torch.DType]float64{torch.Float32: 60, torch.Float64: 600}

// fusable reports whether fusedLosses computes the targets exactly: SupCon only with the "all"
// denominator, and a temperature at which no exp(s - 1/tau) underflows (|s| <= 1/tau for unit vectors).
func fusable(v Views, tau float64, denom Denominator, targets []target) bool {
	for _, t := range targets {
		if t.supcon != 0 && denom != DenomAll {
			return false
		}
	}
	r, ok := fusedShiftRange[v.Z.DType()]
	return ok && 2/tau <= r
}

// fusedLosses computes SupCon ("all"), cNCE and SimCLR over blocks of anchor rows from one
// exponentiated similarity block e = exp(s - shift) per block, shared by the three losses: |s| <= 1/tau
// for unit vectors, so a shift of one known similarity per row replaces each log-sum-exp's row
// maximum without overflow or underflow. In the gradient, the positive terms do not need the [B, M]
// block: the sum over an anchor's positives is a sum of embeddings (per class, per sample). Each target's gradient with
// respect to the normalised embeddings is accumulated analytically: per block one weighted copy of e
// and two matrix products, the positive terms once from the class and sample sums. Memory: a few
// [B, M] blocks and [M, D] sums; time: three [B, M] x [M, D] products per block, as the dense
// path's forward and backward.
func fusedLosses(v Views, tau float64, targets []target) []*torch.Tensor {
	checkLossInputs(v, tau)
	n, nv, d := v.Z.Size(0), v.Z.Size(1), v.Z.Size(2)
	start, count := v.anchors()
	rows, first, nRows := n*nv, start*nv, count*nv
	dev, dt := v.Z.Device(), v.Z.DType()
	grad := torch.GradEnabled() && v.Z.RequiresGrad()
	zhat := v.Z.Reshape(rows, d).Normalize(2, 1, 1e-12)
	twoViews := nv >= 2 // cNCE and SimCLR need an anchor's other views; with one view they are 0
	var needClass bool  // cNCE's denominator, the anchor's class
	for _, t := range targets {
		needClass = needClass || (t.cnce != 0 && twoViews)
	}

	out := make([]*torch.Tensor, len(targets))
	grads := make([]*torch.Tensor, len(targets))
	torch.NoGrad(func() {
		cand := zhat.Detach()
		anch := cand.Narrow(0, first, nRows)
		class := compactLabels(v.Labels).Unsqueeze(1).Expand(n, nv).Reshape(rows) // [M] in [0, M)
		anchClass := class.Narrow(0, first, nRows)

		// SupCon's positives: the other rows of the anchor's class
		classSum := torch.Zeros([]int64{rows, d}, dt, dev).ScatterAdd(0, class.Unsqueeze(1).Expand(rows, d), cand)
		classCount := torch.Zeros([]int64{rows}, dt, dev).ScatterAdd(0, class, torch.Ones([]int64{rows}, dt, dev))
		numP := classCount.IndexSelect(0, anchClass).SubScalar(1)
		sumP := classSum.IndexSelect(0, anchClass).Sub(anch) // [A, D]
		validP := numP.GtScalar(0)
		validPF := validP.To(dt)
		nSup := validPF.Sum().ClampMin(1)
		// cNCE's and SimCLR's positives: the anchor's other views (every anchor has V-1 of them)
		var sumQ, otherViews *torch.Tensor
		numQ, nQ := float64(nv-1), float64(nRows)
		if twoViews {
			sampleSum := cand.Reshape(n, nv, d).SumDims(true, 1).Expand(n, nv, d).Reshape(rows, d)
			sumQ = sampleSum.Narrow(0, first, nRows).Sub(anch)
			// the columns of each anchor's other views [A, V-1]: its sample's first row + (view + k) mod V
			view := torch.Arange(0, float64(nv), 1, torch.Int64, dev).Unsqueeze(0).Expand(count, nv).Reshape(nRows, 1)
			base := torch.Arange(float64(first), float64(first+nRows), 1, torch.Int64, dev).Unsqueeze(1).Sub(view)
			k := torch.Arange(1, float64(nv), 1, torch.Int64, dev).Unsqueeze(0)
			otherViews = base.Add(view.Add(k).Fmod(torch.Full(nil, float64(nv), torch.Int64, dev)))
		}
		needMask := needClass
		for _, t := range targets {
			needMask = needMask || t.supcon != 0
		}

		// the per-anchor weight of e / sumAll (SupCon, SimCLR) and of e_class / sumClass (cNCE) in
		// each target's gradient: the target's weight over the loss's count of anchors
		coefAll := make([]*torch.Tensor, len(targets))
		coefClass := make([]float64, len(targets))
		for j, t := range targets {
			if !grad || t.valueOnly {
				continue
			}
			grads[j] = torch.Zeros([]int64{rows, d}, dt, dev)
			if t.supcon != 0 {
				coefAll[j] = validPF.Mul(nSup.Reciprocal().MulScalar(t.supcon))
			}
			if t.simclr != 0 && twoViews {
				c := torch.Full([]int64{nRows}, t.simclr/nQ, dt, dev)
				if coefAll[j] == nil {
					coefAll[j] = c
				} else {
					coefAll[j] = coefAll[j].Add(c)
				}
			}
			if t.cnce != 0 && twoViews {
				coefClass[j] = t.cnce / nQ
			}
		}

		// per anchor: log sum_{b != a} exp s(a, b), the same over the anchor's class, and the mean s over
		// its positives, from the block's s as the dense path computes them (a loss near 0 is a
		// difference of these, so they must round alike)
		lseAll, posP, posQ := torch.Zeros([]int64{nRows}, dt, dev), torch.Zeros([]int64{nRows}, dt, dev), torch.Zeros([]int64{nRows}, dt, dev)
		var lseClass *torch.Tensor
		if needClass {
			lseClass = torch.Zeros([]int64{nRows}, dt, dev)
		}
		block := v.BlockRows
		if block <= 0 {
			block = max(1, blockElems/rows)
		}
		candT := cand.T()
		for r := int64(0); r < nRows; r += block {
			b := min(block, nRows-r)
			torch.WithScope(func() {
				za := anch.Narrow(0, r, b)
				s := za.MulScalar(1 / tau).MM(candT) // [b, M]
				// the shift: s to the first other view (a term of every denominator), else 1/tau; any
				// shift within [-1/tau, 1/tau] keeps exp(s - shift) within exp(+-2/tau)
				shift := torch.Full([]int64{b, 1}, 1/tau, dt, dev)
				if twoViews {
					q := s.Gather(1, otherViews.Narrow(0, r, b))
					shift = q.Narrow(1, 0, 1)
					posQ.Narrow(0, r, b).CopyFrom(q.SumDims(false, 1).DivScalar(numQ))
				}
				e := s.Sub(shift).Exp()
				e.Narrow(1, first+r, b).Diagonal(0, 0, 1).Zero() // b = a is never in a denominator
				sumAll := e.SumDims(false, 1)
				lseAll.Narrow(0, r, b).CopyFrom(sumAll.ClampMin(tinySum).Log().Add(shift.Squeeze(1)))
				var eClass, sumClass *torch.Tensor
				if needMask {
					sameClass := anchClass.Narrow(0, r, b).Unsqueeze(1).Eq(class.Unsqueeze(0)).To(dt) // with a itself
					self := s.Narrow(1, first+r, b).Diagonal(0, 0, 1)
					posP.Narrow(0, r, b).CopyFrom(s.Mul(sameClass).SumDims(false, 1).Sub(self).Div(numP.Narrow(0, r, b).ClampMin(1)))
					if needClass {
						eClass = e.Mul(sameClass)
						sumClass = eClass.SumDims(false, 1)
						lseClass.Narrow(0, r, b).CopyFrom(sumClass.Log().Add(shift.Squeeze(1)))
					}
				}
				for j := range targets {
					if grads[j] == nil {
						continue
					}
					// w = d target / d s on this block, less the positive terms (added below)
					var w *torch.Tensor
					if coefAll[j] != nil {
						w = e.Mul(coefAll[j].Narrow(0, r, b).Div(sumAll.ClampMin(tinySum)).Unsqueeze(1))
					}
					if coefClass[j] != 0 {
						wc := eClass.Mul(sumClass.Reciprocal().MulScalar(coefClass[j]).Unsqueeze(1))
						if w == nil {
							w = wc
						} else {
							w.AddInPlace(wc)
						}
					}
					if w == nil {
						continue
					}
					// s = za cand^T / tau: the anchors get w cand, the candidates w^T za (tau applied at the end)
					grads[j].Narrow(0, first+r, b).AddInPlace(w.MM(cand))
					grads[j].AddInPlace(w.T().MM(za))
				}
			})
		}

		supVal := torch.Where(validP, lseAll.Sub(posP), torch.Zeros(nil, dt, dev)).Sum().Div(nSup)
		var cnVal, simVal *torch.Tensor
		if twoViews {
			simVal = lseAll.Sub(posQ).Sum().DivScalar(nQ)
			if needClass {
				cnVal = lseClass.Sub(posQ).Sum().DivScalar(nQ)
			}
		}
		for j, t := range targets {
			value := torch.Zeros(nil, dt, dev)
			for _, term := range []struct {
				w   float64
				val *torch.Tensor
			}{{t.supcon, supVal}, {t.cnce, cnVal}, {t.simclr, simVal}} {
				if term.w != 0 && term.val != nil {
					value = value.Add(term.val.MulScalar(term.w))
				}
			}
			out[j] = value
			g := grads[j]
			if g == nil {
				continue
			}
			// the positive terms: -1/|P(a)| per positive of SupCon, -1/(V-1) per other view (cNCE, SimCLR)
			ga := g.Narrow(0, first, nRows)
			if t.supcon != 0 {
				cP := validPF.Div(numP.ClampMin(1)).Mul(nSup.Reciprocal().MulScalar(t.supcon)).Unsqueeze(1) // [A, 1]
				weighted := anch.Mul(cP)
				ga.SubInPlace(sumP.Mul(cP)) // anchor side
				perClass := torch.Zeros([]int64{rows, d}, dt, dev).ScatterAdd(0, anchClass.Unsqueeze(1).Expand(nRows, d), weighted)
				g.SubInPlace(perClass.IndexSelect(0, class)) // candidate side: every anchor of its class ...
				ga.AddInPlace(weighted)                      // ... but itself
			}
			if cq := (t.cnce + t.simclr) / (nQ * numQ); twoViews && cq != 0 {
				// anchor and candidate side are equal: anchors are whole samples
				ga.SubInPlace(sumQ.MulScalar(2 * cq))
			}
			grads[j] = g.DivScalar(tau)
		}
	})
	for j := range targets {
		if grads[j] != nil {
			sur := zhat.Mul(grads[j]).Sum()
			out[j] = sur.Sub(sur.Detach()).Add(out[j])
		}
	}
	return out
}

// tinySum stands in for an empty denominator (an anchor with no other rows, whose weight is 0): every
// real sum is at least exp(-2/tau) >= exp(-60), far above it.
const tinySum = 1e-30

// compactLabels maps labels [N] to 0..K-1 (K distinct labels, in sorted order) on their device, so
// per-class sums fit in [N, D] whatever the label values, without reading the labels back.
func compactLabels(labels *torch.Tensor) *torch.Tensor {
	y := labels.To(torch.Int64)
	n, dev := y.Size(0), y.Device()
	sorted, order := y.Sort(0, false)
	step := sorted.Narrow(0, 1, n-1).Ne(sorted.Narrow(0, 0, n-1)).To(torch.Int64)
	rank := torch.Cat([]*torch.Tensor{torch.Zeros([]int64{1}, torch.Int64, dev), step.Cumsum(0)}, 0)
	return torch.Zeros([]int64{n}, torch.Int64, dev).Scatter(0, order, rank)
}
