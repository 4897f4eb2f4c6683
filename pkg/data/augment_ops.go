package data

import (
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Batched counterparts of torchvision.transforms.functional (0.14) on float images in [0, 1], shape
// [N, C, H, W], with one parameter per image. They reproduce torchvision's tensor formulas operation by
// operation (tests hold them to fixtures made with torchvision), so they differ from it only by
// float32 rounding. Like pkg/torch ops they panic with *torch.Error.

// ToFloat is ToTensor/convert_image_dtype: uint8 -> float32 / 255.
func ToFloat(x *torch.Tensor) *torch.Tensor { return x.To(torch.Float32).DivScalar(255) }

// ResizedCropFlip is resized_crop(img, top, left, height, width, [outH, outW]) (bilinear, antialias
// off as torchvision does for tensors) followed, where flip is true, by hflip, for each image.
// boxes is int64 [N, 4] (top, left, height, width) on x's device; flip is bool [N] or nil.
//
// It is one grid_sample. The grid is built from the crop box the way upsample_bilinear2d (what resize
// calls) places its samples: src = (dst + 0.5) * crop/out - 0.5, clamped to [0, crop-1] so that
// samples never reach pixels outside the box (interpolate clamps to the crop's edge, a plain affine
// grid over the whole image would blend in the neighbours), then shifted by the box origin.
func ResizedCropFlip(x, boxes, flip *torch.Tensor, outH, outW int64) *torch.Tensor {
	n, h, w := x.Size(0), x.Size(2), x.Size(3)
	dev := x.Device()
	axis := func(start, length *torch.Tensor, out, full int64) *torch.Tensor {
		// float32 like the interpolate kernel: scale = crop/out, src = scale*(dst+0.5) - 0.5
		l := length.To(torch.Float32).Unsqueeze(1)
		scale := l.DivScalar(float64(out))
		dst := torch.Arange(0, float64(out), 1, torch.Float32, dev).AddScalar(0.5).Unsqueeze(0)
		src := scale.Mul(dst).SubScalar(0.5).ClampMin(0).Minimum(l.SubScalar(1))
		pix := src.Add(start.To(torch.Float32).Unsqueeze(1))
		// grid_sample (align_corners=False) reads pixel p at (2p+1)/size - 1
		return pix.MulScalar(2).AddScalar(1).DivScalar(float64(full)).SubScalar(1)
	}
	gy := axis(boxes.Select(1, 0), boxes.Select(1, 2), outH, h)
	gx := axis(boxes.Select(1, 1), boxes.Select(1, 3), outW, w)
	if flip != nil {
		gx = torch.Where(flip.Unsqueeze(1), gx.Flip(1), gx)
	}
	grid := torch.Stack([]*torch.Tensor{
		gx.Unsqueeze(1).Expand(n, outH, outW),
		gy.Unsqueeze(2).Expand(n, outH, outW),
	}, 3)
	return torch.GridSample(x, grid, true, torch.PadBorder, false)
}

// perImage turns float64 factors [N] into float32 [N, 1, 1, 1] (torchvision multiplies float32 images
// by the Python float, i.e. by float32(factor)).
func perImage(f *torch.Tensor) *torch.Tensor {
	return f.To(torch.Float32).Reshape(-1, 1, 1, 1)
}

// blend is torchvision's _blend: (r*a + (1-r)*b).clamp(0, 1), 1-r taken in double as Python does.
func blend(a, b, ratio *torch.Tensor) *torch.Tensor {
	return perImage(ratio).Mul(a).Add(perImage(ratio.RSub(1)).Mul(b)).Clamp(0, 1)
}

// RGBToGrayscale is rgb_to_grayscale with one output channel: [N, 1, H, W]. torchvision's tensor
// version weighs R by 0.2989 (PIL, and the ITU-R 601 textbook value, use 0.299); we follow the tensor
// code. A 1-channel image is returned as is.
func RGBToGrayscale(x *torch.Tensor) *torch.Tensor {
	if x.Size(1) == 1 {
		return x
	}
	r, g, b := x.Select(1, 0), x.Select(1, 1), x.Select(1, 2)
	return r.MulScalar(0.2989).Add(g.MulScalar(0.587)).Add(b.MulScalar(0.114)).Unsqueeze(1)
}

// AdjustBrightness is adjust_brightness: blend with black, i.e. (f*x).clamp(0, 1).
func AdjustBrightness(x, factor *torch.Tensor) *torch.Tensor {
	// (1-f)*0 adds a zero, which changes nothing
	return perImage(factor).Mul(x).Clamp(0, 1)
}

// AdjustContrast is adjust_contrast: blend with the mean of the image's grayscale.
func AdjustContrast(x, factor *torch.Tensor) *torch.Tensor {
	mean := RGBToGrayscale(x).MeanDims(true, 1, 2, 3)
	return blend(x, mean, factor)
}

// AdjustSaturation is adjust_saturation: blend with the grayscale image (identity on 1 channel).
func AdjustSaturation(x, factor *torch.Tensor) *torch.Tensor {
	if x.Size(1) == 1 {
		return x
	}
	return blend(x, RGBToGrayscale(x), factor)
}

// hsvLUT says which of (v, p, q, t) each RGB channel takes in each of the six hue sectors: rows of
// torchvision's _hsv2rgb table (v,q,p,p,t,v), (t,v,v,q,p,p), (p,p,t,v,v,q).
var hsvLUT = []int64{
	0, 2, 1, 1, 3, 0,
	3, 0, 0, 2, 1, 1,
	1, 1, 3, 0, 0, 2,
}

// AdjustHue is adjust_hue: RGB -> HSV (torchvision's _rgb2hsv), h = (h + shift) mod 1, HSV -> RGB
// (_hsv2rgb; its one-hot einsum picks one value per pixel, which a where chain does exactly). Identity
// on 1 channel.
func AdjustHue(x, shift *torch.Tensor) *torch.Tensor {
	if x.Size(1) == 1 {
		return x
	}
	f32 := func(t *torch.Tensor) *torch.Tensor { return t.To(torch.Float32) }
	r, g, b := x.Select(1, 0), x.Select(1, 1), x.Select(1, 2)
	maxc, minc := x.AMax(false, 1), x.AMin(false, 1)
	eqc := maxc.Eq(minc)
	cr := maxc.Sub(minc)
	ones := torch.Ones(maxc.Shape(), torch.Float32, x.Device())
	s := cr.Div(torch.Where(eqc, ones, maxc))
	crDiv := torch.Where(eqc, ones, cr)
	rc := maxc.Sub(r).Div(crDiv)
	gc := maxc.Sub(g).Div(crDiv)
	bc := maxc.Sub(b).Div(crDiv)
	maxIsR, maxIsG := maxc.Eq(r), maxc.Eq(g)
	notR := maxIsR.LogicalNot()
	hr := f32(maxIsR).Mul(bc.Sub(gc))
	hg := f32(maxIsG.LogicalAnd(notR)).Mul(rc.AddScalar(2).Sub(bc))
	hb := f32(maxIsG.LogicalNot().LogicalAnd(notR)).Mul(gc.AddScalar(4).Sub(rc))
	h := hr.Add(hg).Add(hb)
	h = h.DivScalar(6).AddScalar(1).Fmod(torch.Ones(nil, torch.Float32, x.Device()))
	// (h + shift) % 1.0, Python's floor remainder: a - floor(a) is that exactly for |a| < 2
	h = h.Add(perImage(shift).Squeeze(1))
	h = h.Sub(h.Floor())
	v := maxc

	h6 := h.MulScalar(6)
	i := h6.Floor()
	fr := h6.Sub(i)
	p := v.Mul(s.RSub(1)).Clamp(0, 1)
	q := v.Mul(s.Mul(fr).RSub(1)).Clamp(0, 1)
	t := v.Mul(s.Mul(fr.RSub(1)).RSub(1)).Clamp(0, 1)
	sector := i.Fmod(torch.Full(nil, 6, torch.Float32, x.Device())) // i % 6 (i >= 0)
	// each output channel takes v, p, q or t by sector (hsvLUT): a where chain over the sectors picks
	// exactly what torchvision's one-hot einsum picks, with no lookup table to upload
	vals := [4]*torch.Tensor{v, p, q, t}
	var inSector [6]*torch.Tensor
	for k := range inSector {
		inSector[k] = sector.EqScalar(float64(k))
	}
	channels := make([]*torch.Tensor, 3)
	for c := range channels {
		ch := vals[hsvLUT[c*6+5]]
		for k := 4; k >= 0; k-- {
			ch = torch.Where(inSector[k], vals[hsvLUT[c*6+k]], ch)
		}
		channels[c] = ch
	}
	return torch.Stack(channels, 1)
}

// Normalize is normalize: (x - mean) / std per channel, with float32 constants.
// The constants are made on x's device by filling (torch.full rounds them to float32 as
// torch.tensor does), not uploaded: no host-to-device copy.
func Normalize(x *torch.Tensor, mean, std []float64) *torch.Tensor {
	return x.Sub(perChannel(mean, x.Device())).Div(perChannel(std, x.Device()))
}

// perChannel is float32 [1, C, 1, 1] holding v, filled on dev.
func perChannel(v []float64, dev torch.Device) *torch.Tensor {
	cs := make([]*torch.Tensor, len(v))
	for i, x := range v {
		cs[i] = torch.Full([]int64{1}, x, torch.Float32, dev)
	}
	return torch.Cat(cs, 0).Reshape(1, -1, 1, 1)
}
