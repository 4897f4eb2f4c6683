package supcon

import (
	"fmt"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// The reference code's variant (HazyResearch/thanos-code), offered as a named compatibility mode.
// Z holds the two views' encoder outputs, h0 = Z[:, 0] and h1 = Z[:, 1], not normalised. Anchors are
// rows of h1, candidates the rows of h0 (same-view pairs are never compared):
//
//	m[i, j]  = <h1_i, h0_j> / (tau * |h1_j| * |h0_j|)   (both norms of the column j: the lc_norm quirk)
//	P_i      = { j : y_j = y_i } (includes j = i),  N_i = the other classes
//	SupCon_i = 1/|P_i| sum_{p in P_i} [ -min(m[i,p], 1) + log(exp m[i,p] + sum_{k in N_i} exp m[i,k]) ]
//	cNCE_i   = -m[i,i] + LSE_{j in P_i} m[i,j]          (never clamped)
//	SimCLR_i = -min(m[i,i], 1) + LSE_j m[i,j]
//
// each averaged over the anchors. The clamp caps the positive logit (after the division by tau) in
// the numerator only. tools/reference/losses.py derives this from the golden values of METHOD.md.
const compatClamp = 1.0

// CompatLosses are the reference code's SupCon (clamped unless noClamp), cNCE and SimCLR.
type CompatLosses struct {
	SupCon, CNCE, SimCLR *torch.Tensor
}

// Spread is alpha * SupCon + (1 - alpha) * cNCE.
func (c CompatLosses) Spread(alpha float64) *torch.Tensor {
	return c.SupCon.MulScalar(alpha).Add(c.CNCE.MulScalar(1 - alpha))
}

// CompatOptions switch off the reference code's two quirks (both on in its released runs).
type CompatOptions struct {
	NoClamp  bool // no cap on the positive logit
	NoLCNorm bool // plain dot products / tau instead of the column-norm scaling
}

// Compat computes the reference code's losses; Z must have exactly 2 views.
func Compat(v Views, tau float64, o CompatOptions) CompatLosses {
	if err := v.checkShapes(); err != nil {
		panic(&torch.Error{Op: "compat loss", Msg: err.Error()})
	}
	if v.Z.Size(1) != 2 {
		panic(&torch.Error{Op: "compat loss", Msg: fmt.Sprintf("the reference code's loss takes exactly 2 views, got %d", v.Z.Size(1))})
	}
	if !(tau > 0) {
		panic(&torch.Error{Op: "compat loss", Msg: fmt.Sprintf("temperature %v must be positive", tau)})
	}
	start, count := v.anchors()
	h0 := v.Z.Select(1, 0)
	h1 := v.Z.Select(1, 1)
	m := h1.Narrow(0, start, count).MM(h0.T()).DivScalar(tau)
	if !o.NoLCNorm {
		m = m.Div(h1.Norm(false, 1).Mul(h0.Norm(false, 1)).Unsqueeze(0)) // column j's norms
	}

	labels := v.Labels.To(torch.Int64)
	pos := labels.Narrow(0, start, count).Unsqueeze(1).Eq(labels.Unsqueeze(0))
	self := torch.Arange(float64(start), float64(start+count), 1, torch.Int64, m.Device()).Unsqueeze(1).
		Eq(torch.Arange(0, float64(v.Z.Size(0)), 1, torch.Int64, m.Device()).Unsqueeze(0))
	num := m
	if !o.NoClamp {
		num = m.ClampMax(compatClamp)
	}
	return CompatLosses{
		SupCon: compatSupCon(m, num, pos),
		CNCE:   m.Mul(self.To(m.DType())).SumDims(false, 1).Neg().Add(m.MaskedFill(pos.LogicalNot(), maskedLogit).LogSumExp(false, 1)).Mean(),
		SimCLR: compatSupCon(m, num, self),
	}
}

// compatSupCon is mean_i 1/|P_i| sum_p [ -num[i,p] + logaddexp(m[i,p], LSE_{N_i} m[i,.]) ].
func compatSupCon(m, num, pos *torch.Tensor) *torch.Tensor {
	negLSE := m.MaskedFill(pos, maskedLogit).LogSumExp(true, 1)
	hi := m.Maximum(negLSE)
	den := hi.Add(m.Sub(negLSE).Abs().Neg().Exp().Log1p())
	posF := pos.To(m.DType())
	perAnchor := den.Sub(num).Mul(posF).SumDims(false, 1).Div(posF.SumDims(false, 1))
	return perAnchor.Mean()
}
