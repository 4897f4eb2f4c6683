package data

import (
	"fmt"
	"math"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Augmenter applies an AugmentConfig to batches of uint8 images on the device where they live, with
// the device's default torch generator (torch.ManualSeed reproduces a batch; the trainer's checkpoints
// hold its state). Everything is batched: random parameters are drawn for all images at once on the
// device and each step is a handful of tensor ops; nothing is copied between host and device
// (torch.HostCopies stays put), so on a GPU a batch never waits for the device.
type Augmenter struct {
	cfg        AugmentConfig // resolved: Mean/Std set
	c, h, w    int64
	outH, outW int64
}

// NewAugmenter resolves cfg for images of a named dataset (for the default normalisation) of shape
// C x H x W.
func NewAugmenter(cfg AugmentConfig, dataset string, c, h, w int) (*Augmenter, error) {
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("augment: bad image size %dx%d", h, w)
	}
	cfg, err := cfg.Resolve(dataset, c)
	if err != nil {
		return nil, err
	}
	a := &Augmenter{cfg: cfg, c: int64(c), h: int64(h), w: int64(w), outH: int64(h), outW: int64(w)}
	if cfg.Size > 0 {
		a.outH, a.outW = int64(cfg.Size), int64(cfg.Size)
	}
	return a, nil
}

func (a *Augmenter) checkInput(x *torch.Tensor) error {
	s := x.Shape()
	if len(s) != 4 || s[1] != a.c || s[2] != a.h || s[3] != a.w || x.DType() != torch.Uint8 {
		return fmt.Errorf("augment: want uint8 images [B, %d, %d, %d], got %v", a.c, a.h, a.w, x)
	}
	return nil
}

// Views makes views independent augmentations of each image of x (uint8 [B, C, H, W]) and returns
// them normalised, float32 [B, V, C, outH, outW] on x's device: row b holds image b's views, so
// Reshape(B*V, C, outH, outW) feeds an encoder with the views of one image adjacent (what the training
// objective expects). The result belongs to the caller's scope; intermediates are freed.
func (a *Augmenter) Views(x *torch.Tensor, views int) (out *torch.Tensor, err error) {
	if views < 1 {
		return nil, fmt.Errorf("augment: %d views; want at least 1", views)
	}
	if err := a.checkInput(x); err != nil {
		return nil, err
	}
	err = torch.Catch(func() {
		s := torch.NewScope()
		defer s.Close()
		b, v := x.Size(0), int64(views)
		xf := ToFloat(x).Unsqueeze(1).Expand(b, v, a.c, a.h, a.w).Reshape(b*v, a.c, a.h, a.w)
		p := a.Sample(b*v, x.Device())
		out = a.Apply(xf, p).Reshape(b, v, a.c, a.outH, a.outW)
		s.Keep(out)
	})
	return out, err
}

// Eval is the evaluation transform: float32 [B, C, outH, outW], scaled to [0, 1], resized (bilinear,
// as torchvision's Resize on tensors) only when augment.size differs from the input, and normalised.
func (a *Augmenter) Eval(x *torch.Tensor) (out *torch.Tensor, err error) {
	if err := a.checkInput(x); err != nil {
		return nil, err
	}
	err = torch.Catch(func() {
		s := torch.NewScope()
		defer s.Close()
		xf := ToFloat(x)
		if a.outH != a.h || a.outW != a.w {
			xf = ResizedCropFlip(xf, a.wholeImage(x.Size(0), x.Device()), nil, a.outH, a.outW)
		}
		out = Normalize(xf, a.cfg.Mean, a.cfg.Std)
		s.Keep(out)
	})
	return out, err
}

// AugmentParams are the random choices for a batch of N images, all on the device.
type AugmentParams struct {
	Boxes   *torch.Tensor // int64 [N, 4]: crop top, left, height, width
	Flip    *torch.Tensor // bool [N]; nil when flips are off
	Jitter  *torch.Tensor // bool [N]: ColorJitter applied; nil when jitter is off
	Factors *torch.Tensor // float64 [N, 4]: brightness, contrast, saturation factors, hue shift
	Order   *torch.Tensor // int64 [N, 4]: each image's order of the four adjustments (0 b, 1 c, 2 s, 3 h)
	Gray    *torch.Tensor // bool [N]; nil when grayscale is off or the images have one channel
}

// Sample draws the parameters for n images with dev's generator.
func (a *Augmenter) Sample(n int64, dev torch.Device) *AugmentParams {
	cfg := a.cfg
	p := &AugmentParams{}
	if cfg.Crop.Enabled {
		p.Boxes = a.sampleCrops(n, dev)
	} else {
		p.Boxes = a.wholeImage(n, dev)
	}
	if cfg.HFlip > 0 {
		p.Flip = torch.Rand([]int64{n}, torch.Float64, dev).LtScalar(cfg.HFlip)
	}
	j := cfg.Jitter
	if j.P > 0 && (j.Brightness > 0 || j.Contrast > 0 || j.Saturation > 0 || j.Hue > 0) {
		p.Jitter = torch.Rand([]int64{n}, torch.Float64, dev).LtScalar(j.P)
		lo := []float64{math.Max(0, 1-j.Brightness), math.Max(0, 1-j.Contrast), math.Max(0, 1-j.Saturation), -j.Hue}
		hi := []float64{1 + j.Brightness, 1 + j.Contrast, 1 + j.Saturation, j.Hue}
		u := torch.Rand([]int64{n, 4}, torch.Float64, dev)
		// column by column with scalars: no host-to-device copy of lo and hi
		cols := make([]*torch.Tensor, 4)
		for i := range cols {
			cols[i] = u.Select(1, int64(i)).MulScalar(hi[i] - lo[i]).AddScalar(lo[i])
		}
		p.Factors = torch.Stack(cols, 1)
		// argsort of uniform keys is a uniformly random permutation (torch.randperm(4) per image)
		_, p.Order = torch.Rand([]int64{n, 4}, torch.Float64, dev).Sort(1, false)
	}
	if cfg.Grayscale > 0 && a.c == 3 {
		p.Gray = torch.Rand([]int64{n}, torch.Float64, dev).LtScalar(cfg.Grayscale)
	}
	return p
}

// sampleCrops is RandomResizedCrop.get_params for n images at once: 10 candidate (area, log-ratio)
// draws per image, the first whose rounded size fits is taken, else torchvision's central fallback;
// the offset is uniform over the positions that fit (torch.randint).
func (a *Augmenter) sampleCrops(n int64, dev torch.Device) *torch.Tensor {
	const tries = 10
	sc, ra := a.cfg.Crop.Scale, a.cfg.Crop.Ratio
	H, W := float64(a.h), float64(a.w)
	area := torch.Rand([]int64{n, tries}, torch.Float64, dev).MulScalar(sc[1] - sc[0]).AddScalar(sc[0]).MulScalar(H * W)
	l0, l1 := math.Log(ra[0]), math.Log(ra[1])
	ratio := torch.Rand([]int64{n, tries}, torch.Float64, dev).MulScalar(l1 - l0).AddScalar(l0).Exp()
	// round half to even, as Python's round
	cw := area.Mul(ratio).Sqrt().Round()
	ch := area.Div(ratio).Sqrt().Round()
	ok := cw.GtScalar(0).LogicalAnd(cw.LeScalar(W)).LogicalAnd(ch.GtScalar(0)).LogicalAnd(ch.LeScalar(H))
	first := ok.To(torch.Float32).Argmax(1, true) // first maximum: the first valid try
	anyOK := ok.Any(false, 1)
	fh, fw := centralFallback(H, W, ra)
	cw = torch.Where(anyOK, cw.Gather(1, first).Squeeze(1), torch.Full(nil, fw, torch.Float64, dev))
	ch = torch.Where(anyOK, ch.Gather(1, first).Squeeze(1), torch.Full(nil, fh, torch.Float64, dev))
	// the fallback crop is centred; fitting crops are placed uniformly
	top := torch.Rand([]int64{n}, torch.Float64, dev).Mul(ch.RSub(H + 1)).Floor()
	left := torch.Rand([]int64{n}, torch.Float64, dev).Mul(cw.RSub(W + 1)).Floor()
	top = torch.Where(anyOK, top, ch.RSub(H).DivScalar(2).Floor())
	left = torch.Where(anyOK, left, cw.RSub(W).DivScalar(2).Floor())
	return torch.Stack([]*torch.Tensor{top, left, ch, cw}, 1).To(torch.Int64)
}

// wholeImage is the crop box (0, 0, H, W) for n images, int64 [n, 4], made on dev without a copy.
func (a *Augmenter) wholeImage(n int64, dev torch.Device) *torch.Tensor {
	col := func(v int64) *torch.Tensor { return torch.Full([]int64{n}, float64(v), torch.Int64, dev) }
	return torch.Stack([]*torch.Tensor{col(0), col(0), col(a.h), col(a.w)}, 1)
}

// centralFallback is RandomResizedCrop's crop size when no try fits.
func centralFallback(h, w float64, ratio [2]float64) (ch, cw float64) {
	in := w / h
	switch {
	case in < ratio[0]:
		return math.RoundToEven(w / ratio[0]), w
	case in > ratio[1]:
		return h, math.RoundToEven(h * ratio[1])
	}
	return h, w
}

// Apply augments float images x [N, C, H, W] in [0, 1] with p and normalises them.
func (a *Augmenter) Apply(x *torch.Tensor, p *AugmentParams) *torch.Tensor {
	if a.cfg.Crop.Enabled || a.outH != a.h || a.outW != a.w {
		x = ResizedCropFlip(x, p.Boxes, p.Flip, a.outH, a.outW)
	} else if p.Flip != nil {
		// nothing to resample: skip grid_sample, which would round the coordinates
		x = torch.Where(p.Flip.Reshape(-1, 1, 1, 1), x.Flip(3), x)
	}
	if p.Jitter != nil {
		x = a.jitter(x, p)
	}
	if p.Gray != nil {
		g := RGBToGrayscale(x).Expand(x.Shape()...)
		x = torch.Where(p.Gray.Reshape(-1, 1, 1, 1), g, x)
	}
	return Normalize(x, a.cfg.Mean, a.cfg.Std)
}

// jitter applies ColorJitter with each image's own order of adjustments, as torchvision does one image
// at a time. Step k computes every enabled adjustment on the whole batch and keeps, per image, the one
// that is its k-th (or the input, for images not jittered): each image sees exactly torchvision's
// sequence. This costs each enabled adjustment four times per image, but decides nothing on the host,
// so the step never waits for the device (grouping the images by adjustment would need the group
// sizes on the host: a device-to-host copy per step).
func (a *Augmenter) jitter(x *torch.Tensor, p *AugmentParams) *torch.Tensor {
	j := a.cfg.Jitter
	enabled := [4]bool{j.Brightness > 0, j.Contrast > 0, j.Saturation > 0 && a.c == 3, j.Hue > 0 && a.c == 3}
	ops := [4]func(x, f *torch.Tensor) *torch.Tensor{AdjustBrightness, AdjustContrast, AdjustSaturation, AdjustHue}
	applied := p.Jitter.Reshape(-1, 1, 1, 1)
	for k := int64(0); k < 4; k++ {
		op := p.Order.Select(1, k).Reshape(-1, 1, 1, 1)
		out := x
		for i, on := range enabled {
			if !on {
				continue
			}
			mine := applied.LogicalAnd(op.EqScalar(float64(i)))
			out = torch.Where(mine, ops[i](x, p.Factors.Select(1, int64(i))), out)
		}
		x = out
	}
	return x
}
