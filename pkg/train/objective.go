package train

import (
	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Terms are one step's loss terms; Total is what backward runs on. Unused terms are nil.
type Terms struct {
	Total, SupCon, CNCE, SimCLR, AE, CE *torch.Tensor
}

// Named lists the defined terms for logging, named and ordered by lossTerms.
func (t Terms) Named() []torch.Named {
	var out []torch.Named
	for i, x := range []*torch.Tensor{t.Total, t.SupCon, t.CNCE, t.SimCLR, t.AE, t.CE} {
		if x != nil {
			out = append(out, torch.Named{Name: lossTerms[i], Tensor: x})
		}
	}
	return out
}

// stepInput is what the objective sees of one step.
type stepInput struct {
	views  *torch.Tensor // [B, V, C, H, W] augmented, normalised
	coarse *torch.Tensor // [B] int64
	// gather, when set, turns local embeddings [B, V, D] into the global batch (with gradient) and
	// returns it with the global labels and where the local rows start (data parallelism).
	gather func(z, labels *torch.Tensor) (*torch.Tensor, *torch.Tensor, int64)
}

// objective computes L = L_spread (or SupCon, SimCLR) + beta * L_AE + gamma * L_CE. The forward
// passes run on the fast path fp; the losses always in the parameters' dtype. The two-backbone methods
// are in objectiveTwoBackbones.
func objective(m *Model, meth MethodConfig, fp FastPath, in stepInput) Terms {
	if m.EncoderB != nil {
		return objectiveTwoBackbones(m, meth, fp, in)
	}
	flat, labelsPerView, b, v := flatViews(in, fp)
	var h *torch.Tensor // [B*V, F]
	fp.forward(func() { h = m.Encoder.Forward(flat) })
	var t Terms
	var total *torch.Tensor
	add := func(term *torch.Tensor, w float64) {
		if w == 0 {
			return
		}
		if total == nil {
			total = term.MulScalar(w)
		} else {
			total = total.Add(term.MulScalar(w))
		}
	}

	if meth.Name != "ce" {
		z := h
		if m.Head != nil {
			fp.forward(func() { z = m.Head.Forward(h) })
		}
		views := contrastiveViews(full(z).Reshape(b, v, -1), in, fp)
		switch {
		case meth.Compat:
			c := supcon.Compat(views, meth.Temperature, supcon.CompatOptions{})
			if meth.Name == "simclr" {
				t.SimCLR = c.SimCLR
				add(c.SimCLR, 1)
			} else {
				t.SupCon, t.CNCE = c.SupCon, c.CNCE
				add(c.Spread(meth.Alpha), 1)
			}
		case meth.Name == "simclr":
			t.SimCLR = supcon.SimCLR(views, meth.Temperature)
			add(t.SimCLR, 1)
		default: // supcon (alpha 1), spread, thanos; cNCE is logged even where its weight is 0
			var spread *torch.Tensor // the terms are for logging: one gradient, half the blockwise products
			spread, t.SupCon, t.CNCE = supcon.SpreadTerms(views, meth.Temperature, meth.Alpha, supcon.Denominator(meth.Denominator))
			add(spread, 1)
		}
	}
	if m.Decoder != nil && meth.Beta > 0 {
		var rec *torch.Tensor
		fp.forward(func() { rec = m.Decoder.Forward(h, labelsPerView) }) // a conditional decoder sees the coarse label
		t.AE = torch.MSELoss(full(rec), flat, torch.ReduceMean)
		add(t.AE, meth.Beta)
	}
	if m.Classifier != nil && meth.Gamma > 0 {
		var logits *torch.Tensor
		fp.forward(func() { logits = m.Classifier.Forward(h) })
		t.CE = torch.CrossEntropy(full(logits), labelsPerView, torch.ReduceMean, 0)
		add(t.CE, meth.Gamma)
	}
	t.Total = total
	return t
}

// objectiveTwoBackbones is the reference code's two-backbone model: backbone A trained with L_spread
// (SupCon alone for supcon-2b), backbone B with the autoencoder (thanos-2b: beta * L_AE, the decoder
// reading B's features only) or with SupCon as well (supcon-2b), and gamma * cross-entropy of one
// classifier on both backbones' features side by side. For supcon-2b the logged supcon term is the
// mean of the two backbones' SupCon losses; the total holds both.
func objectiveTwoBackbones(m *Model, meth MethodConfig, fp FastPath, in stepInput) Terms {
	flat, labelsPerView, b, v := flatViews(in, fp)
	var hA, hB *torch.Tensor // [B*V, F] each
	fp.forward(func() { hA, hB = m.Encoder.Forward(flat), m.EncoderB.Forward(flat) })
	contrast := func(h *torch.Tensor) (supConLoss, cnceLoss *torch.Tensor) {
		views := contrastiveViews(full(h).Reshape(b, v, -1), in, fp)
		return supcon.Terms(views, meth.Temperature, supcon.Denominator(meth.Denominator))
	}

	var t Terms
	t.SupCon, t.CNCE = contrast(hA)
	total := t.SupCon.MulScalar(meth.Alpha)
	if meth.Alpha < 1 {
		total = total.Add(t.CNCE.MulScalar(1 - meth.Alpha))
	}
	if meth.Name == "supcon-2b" {
		supConB, _ := contrast(hB)
		total = total.Add(supConB)
		t.SupCon = t.SupCon.Add(supConB).MulScalar(0.5)
	}
	if m.Decoder != nil && meth.Beta > 0 {
		var rec *torch.Tensor
		fp.forward(func() { rec = m.Decoder.Forward(hB, labelsPerView) })
		t.AE = torch.MSELoss(full(rec), flat, torch.ReduceMean)
		total = total.Add(t.AE.MulScalar(meth.Beta))
	}
	if m.Classifier != nil && meth.Gamma > 0 {
		var logits *torch.Tensor
		fp.forward(func() { logits = m.Classifier.Forward(torch.Cat([]*torch.Tensor{hA, hB}, 1)) })
		t.CE = torch.CrossEntropy(full(logits), labelsPerView, torch.ReduceMean, 0)
		total = total.Add(t.CE.MulScalar(meth.Gamma))
	}
	t.Total = total
	return t
}

// flatViews is the step's views as one batch [B*V, C, H, W] (channels-last on that fast path), with
// the coarse label of every view [B*V], B and V.
func flatViews(in stepInput, fp FastPath) (flat, labelsPerView *torch.Tensor, b, v int64) {
	shape := in.views.Shape()
	b, v = shape[0], shape[1]
	flat = in.views.Reshape(append([]int64{b * v}, shape[2:]...)...)
	if fp.ChannelsLast && len(shape) == 5 {
		flat = flat.ChannelsLast()
	}
	return flat, in.coarse.Unsqueeze(1).Expand(b, v).Reshape(b * v), b, v
}

// contrastiveViews are embeddings z [B, V, D] as the contrastive losses see them: this rank's batch,
// or under data parallelism the gathered global batch with this rank's rows as the anchors; on the
// SupCon path of the fast path fp.
func contrastiveViews(z *torch.Tensor, in stepInput, fp FastPath) supcon.Views {
	if in.gather == nil {
		return supcon.Views{Z: z, Labels: in.coarse, Path: fp.SupConPath}
	}
	gz, gy, start := in.gather(z, in.coarse)
	return supcon.Views{Z: gz, Labels: gy, AnchorStart: start, AnchorCount: z.Size(0), Path: fp.SupConPath}
}
