// Package supcon implements the contrastive losses of "Perfectly Balanced" (Chen et al., ICML 2022)
// as a few matrix products over the batch, assembled from pkg/torch ops:
//
//   - SupCon (Khosla et al. 2020, L_out) with the "all" or "negatives" denominator,
//   - the class-conditional InfoNCE term (cNCE), which contrasts only against the anchor's class,
//   - L_spread = alpha * SupCon + (1 - alpha) * cNCE,
//   - SimCLR (labels ignored), the self-supervised baseline.
//
// Every view of every sample is an anchor; anchors with no positive are left out of the mean, and a
// batch in which no anchor has a positive gives 0. docs/losses.md gives the formulas.
package supcon

import (
	"fmt"
	"math"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Denominator selects SupCon's normaliser.
type Denominator string

const (
	// DenomAll contrasts each anchor against every other item (Khosla et al.).
	DenomAll Denominator = "all"
	// DenomNegatives uses, for each positive p, {p} and the other-class items only (the reference
	// code's form, also SINCERE).
	DenomNegatives Denominator = "negatives"
)

// ParseDenominator reads "all" or "negatives".
func ParseDenominator(s string) (Denominator, error) {
	switch Denominator(s) {
	case DenomAll, DenomNegatives:
		return Denominator(s), nil
	}
	return "", fmt.Errorf("denominator %q: want all or negatives", s)
}

// Views are the embeddings a loss compares: candidates Z [N, V, D] (raw; the losses L2-normalise
// them) with labels [N], of which rows [AnchorStart, AnchorStart+AnchorCount) are the anchors.
// AnchorCount 0 means every row. In data-parallel training Z is the all-gathered global batch and
// the anchors are this process's rows. Path picks the dense or the blockwise computation (same
// values and gradients); BlockRows sets the blockwise path's anchor rows per block (0: automatic).
type Views struct {
	Z           *torch.Tensor
	Labels      *torch.Tensor
	AnchorStart int64
	AnchorCount int64
	Path        Path
	BlockRows   int64
}

// masked entries get this instead of -inf, so that rows with nothing to sum have finite gradients
const maskedLogit = -1e9

// Validate checks shapes, label type and range of anchors, and that every embedding is finite (this
// reads the data back, so a training loop on an accelerator calls it only when debugging).
func (v Views) Validate() error {
	if err := v.checkShapes(); err != nil {
		return err
	}
	finite := true
	if err := torch.Catch(func() {
		torch.WithScope(func() { finite = v.Z.IsFinite().All(false).Item() != 0 })
	}); err != nil {
		return err
	}
	if !finite {
		return fmt.Errorf("embeddings contain NaN or Inf")
	}
	return nil
}

func (v Views) checkShapes() error {
	if v.Z == nil || v.Labels == nil {
		return fmt.Errorf("embeddings and labels are both required")
	}
	zs, ls := v.Z.Shape(), v.Labels.Shape()
	if len(zs) != 3 {
		return fmt.Errorf("embeddings have shape %v, want [N, V, D]", zs)
	}
	if zs[0] == 0 || zs[1] == 0 || zs[2] == 0 {
		return fmt.Errorf("embeddings have shape %v: every dimension must be non-empty", zs)
	}
	if !v.Z.DType().IsFloat() {
		return fmt.Errorf("embeddings are %v, want a floating-point type", v.Z.DType())
	}
	if len(ls) != 1 || ls[0] != zs[0] {
		return fmt.Errorf("labels have shape %v, want [%d] to match embeddings %v", ls, zs[0], zs)
	}
	if dt := v.Labels.DType(); dt != torch.Int64 && dt != torch.Int32 {
		return fmt.Errorf("labels are %v, want int64 or int32", dt)
	}
	start, count := v.anchors()
	if start < 0 || count <= 0 || start+count > zs[0] {
		return fmt.Errorf("anchor rows [%d, %d) outside the %d candidates", start, start+count, zs[0])
	}
	return nil
}

func (v Views) anchors() (start, count int64) {
	count = v.AnchorCount
	if count == 0 {
		count = v.Z.Size(0) - v.AnchorStart
	}
	return v.AnchorStart, count
}

// pairs holds the scaled similarities of every anchor row to every candidate row, with rows and
// columns flattened sample-major (row = sample*V + view), and the masks the losses need.
type pairs struct {
	s          *torch.Tensor // [Na*V, Nc*V] cosine / tau
	notSelf    *torch.Tensor // bool: b != a
	sameClass  *torch.Tensor // bool: y_b = y_a and b != a
	sameSample *torch.Tensor // bool: same sample, other view
}

// checkLossInputs panics with a typed error on bad shapes or temperature (programmer errors).
func checkLossInputs(v Views, tau float64) {
	if err := v.checkShapes(); err != nil {
		panic(&torch.Error{Op: "contrastive loss", Msg: err.Error()})
	}
	if !(tau > 0) || math.IsInf(tau, 0) {
		panic(&torch.Error{Op: "contrastive loss", Msg: fmt.Sprintf("temperature %v must be a positive number", tau)})
	}
}

func newPairs(v Views, tau float64) pairs {
	checkLossInputs(v, tau)
	n, nv, d := v.Z.Size(0), v.Z.Size(1), v.Z.Size(2)
	start, count := v.anchors()
	dev := v.Z.Device()

	cand := v.Z.Reshape(n*nv, d).Normalize(2, 1, 1e-12)
	anch := cand.Narrow(0, start*nv, count*nv)
	s := anch.MM(cand.T()).DivScalar(tau)

	// per-row sample index and label, sample-major
	candSample := torch.Arange(0, float64(n), 1, torch.Int64, dev).Unsqueeze(1).Expand(n, nv).Reshape(n * nv)
	candLabel := v.Labels.To(torch.Int64).Unsqueeze(1).Expand(n, nv).Reshape(n * nv)
	candRow := torch.Arange(0, float64(n*nv), 1, torch.Int64, dev)
	anchSample := candSample.Narrow(0, start*nv, count*nv).Unsqueeze(1)
	anchLabel := candLabel.Narrow(0, start*nv, count*nv).Unsqueeze(1)
	anchRow := candRow.Narrow(0, start*nv, count*nv).Unsqueeze(1)

	notSelf := anchRow.Ne(candRow.Unsqueeze(0))
	sameSample := anchSample.Eq(candSample.Unsqueeze(0)).LogicalAnd(notSelf)
	sameClass := anchLabel.Eq(candLabel.Unsqueeze(0)).LogicalAnd(notSelf)
	return pairs{s: s, notSelf: notSelf, sameClass: sameClass, sameSample: sameSample}
}

// meanOverAnchors averages per-anchor losses over anchors that have a positive (0 when none does).
func meanOverAnchors(perAnchor, numPos *torch.Tensor) *torch.Tensor {
	valid := numPos.GtScalar(0)
	nValid := valid.To(perAnchor.DType()).Sum()
	total := torch.Where(valid, perAnchor, torch.Zeros(nil, perAnchor.DType(), perAnchor.Device())).Sum()
	return total.Div(nValid.ClampMin(1))
}

// infoNCE is mean_a [ LSE_{b in denom(a)} s(a,b) - mean_{p in pos(a)} s(a,p) ].
func infoNCE(s, pos, denom *torch.Tensor) *torch.Tensor {
	lse := s.MaskedFill(denom.LogicalNot(), maskedLogit).LogSumExp(false, 1)
	posF := pos.To(s.DType())
	numPos := posF.SumDims(false, 1)
	posSum := s.Mul(posF).SumDims(false, 1)
	perAnchor := lse.Sub(posSum.Div(numPos.ClampMin(1)))
	return meanOverAnchors(perAnchor, numPos)
}

// negativesDenominator is SupCon where each positive p is normalised by {p} and the other-class
// items: mean_a [ -1/|P(a)| sum_p ( s(a,p) - log(exp s(a,p) + sum_{neg} exp s(a,b)) ) ].
func negativesDenominator(s, pos, notSelf *torch.Tensor) *torch.Tensor {
	neg := pos.LogicalNot().LogicalAnd(notSelf)
	negLSE := s.MaskedFill(neg.LogicalNot(), maskedLogit).LogSumExp(true, 1)
	// log(exp(s) + exp(negLSE)) computed stably as max + log1p(exp(-|s - negLSE|))
	hi := s.Maximum(negLSE)
	logDen := hi.Add(s.Sub(negLSE).Abs().Neg().Exp().Log1p())
	posF := pos.To(s.DType())
	numPos := posF.SumDims(false, 1)
	perPair := logDen.Sub(s).Mul(posF).SumDims(false, 1)
	return meanOverAnchors(perPair.Div(numPos.ClampMin(1)), numPos)
}

func (p pairs) supcon(denom Denominator) *torch.Tensor {
	switch denom {
	case DenomAll:
		return infoNCE(p.s, p.sameClass, p.notSelf)
	case DenomNegatives:
		return negativesDenominator(p.s, p.sameClass, p.notSelf)
	}
	panic(&torch.Error{Op: "supcon", Msg: fmt.Sprintf("unknown denominator %q", denom)})
}

func (p pairs) cnce() *torch.Tensor   { return infoNCE(p.s, p.sameSample, p.sameClass) }
func (p pairs) simclr() *torch.Tensor { return infoNCE(p.s, p.sameSample, p.notSelf) }

// SupCon is the supervised contrastive loss.
func SupCon(v Views, tau float64, denom Denominator) *torch.Tensor {
	if v.useBlockwise() {
		return blockwise(v, tau, denom, []target{{supcon: 1}})[0]
	}
	return newPairs(v, tau).supcon(denom)
}

// CNCE is the class-conditional InfoNCE term: positives are the anchor's other views, and the
// denominator holds only items of the anchor's class.
func CNCE(v Views, tau float64) *torch.Tensor {
	if v.useBlockwise() {
		return blockwise(v, tau, DenomAll, []target{{cnce: 1}})[0]
	}
	return newPairs(v, tau).cnce()
}

// SimCLR is the self-supervised NT-Xent loss (labels ignored).
func SimCLR(v Views, tau float64) *torch.Tensor {
	if v.useBlockwise() {
		return blockwise(v, tau, DenomAll, []target{{simclr: 1}})[0]
	}
	return newPairs(v, tau).simclr()
}

// Spread is L_spread = alpha * SupCon + (1 - alpha) * cNCE, sharing one similarity matrix.
func Spread(v Views, tau, alpha float64, denom Denominator) *torch.Tensor {
	spread, _, _ := spreadTerms(v, tau, alpha, denom, false)
	return spread
}

// SpreadTerms is Spread together with its two terms for logging: SupCon and cNCE carry no gradient,
// so the blockwise path differentiates only their weighted sum (half the matrix products of Terms).
func SpreadTerms(v Views, tau, alpha float64, denom Denominator) (spread, supcon, cnce *torch.Tensor) {
	return spreadTerms(v, tau, alpha, denom, true)
}

func spreadTerms(v Views, tau, alpha float64, denom Denominator, withTerms bool) (spread, supcon, cnce *torch.Tensor) {
	if alpha < 0 || alpha > 1 {
		panic(&torch.Error{Op: "spread", Msg: fmt.Sprintf("alpha %v must be in [0, 1]", alpha)})
	}
	if v.useBlockwise() {
		targets := []target{{supcon: alpha, cnce: 1 - alpha}}
		if withTerms {
			targets = append(targets, target{supcon: 1, valueOnly: true}, target{cnce: 1, valueOnly: true})
		}
		l := blockwise(v, tau, denom, targets)
		if withTerms {
			return l[0], l[1], l[2]
		}
		return l[0], nil, nil
	}
	p := newPairs(v, tau)
	var sc, cn *torch.Tensor
	if alpha != 0 || withTerms {
		sc = p.supcon(denom)
	}
	if alpha != 1 || withTerms {
		cn = p.cnce()
	}
	switch alpha {
	case 1:
		spread = sc
	case 0:
		spread = cn
	default:
		spread = sc.MulScalar(alpha).Add(cn.MulScalar(1 - alpha))
	}
	if !withTerms {
		return spread, nil, nil
	}
	return spread, sc.Detach(), cn.Detach()
}

// Terms computes SupCon and cNCE, each with its own gradient, from one similarity matrix.
func Terms(v Views, tau float64, denom Denominator) (supcon, cnce *torch.Tensor) {
	if v.useBlockwise() {
		l := blockwise(v, tau, denom, []target{{supcon: 1}, {cnce: 1}})
		return l[0], l[1]
	}
	p := newPairs(v, tau)
	return p.supcon(denom), p.cnce()
}

// AllTerms computes SupCon, cNCE and SimCLR from one walk over the similarities: one blockwise pass,
// or one dense similarity matrix on the dense path (v.Path as for the other losses; analyze asks for
// the blockwise path, whose memory grows linearly with the embeddings).
func AllTerms(v Views, tau float64, denom Denominator) (supcon, cnce, simclr *torch.Tensor) {
	if !v.useBlockwise() {
		p := newPairs(v, tau)
		return p.supcon(denom), p.cnce(), p.simclr()
	}
	l := blockwise(v, tau, denom, []target{{supcon: 1}, {cnce: 1}, {simclr: 1}})
	return l[0], l[1], l[2]
}
