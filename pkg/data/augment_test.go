package data

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/npy"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func TestMain(m *testing.M) {
	torch.SetNumThreads(1) // CI runs on 2 cores; one intra-op thread keeps timings honest
	os.Exit(m.Run())
}

func fixture(t *testing.T, name string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join("testdata", "augment", name+".npy"))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 pkg/data/testdata/gen_augment.py)", err)
	}
	return a
}

func fixtureTensor(t *testing.T, name string) *torch.Tensor {
	t.Helper()
	a := fixture(t, name)
	shape := make([]int64, len(a.Shape))
	for i, s := range a.Shape {
		shape[i] = int64(s)
	}
	switch d := a.Data.(type) {
	case []uint8:
		return torch.FromSlice(d, shape...)
	case []float32:
		return torch.FromSlice(d, shape...)
	case []float64:
		return torch.FromSlice(d, shape...)
	case []int64:
		return torch.FromSlice(d, shape...)
	case []bool:
		return torch.FromSlice(d, shape...)
	}
	t.Fatalf("%s: unexpected dtype %s", name, a.DType)
	return nil
}

// maxDiff reports the largest absolute difference and fails above tol.
func maxDiff(t *testing.T, name string, got, want *torch.Tensor, tol float64) float64 {
	t.Helper()
	if gs, ws := got.Shape(), want.Shape(); !slices.Equal(gs, ws) {
		t.Fatalf("%s: shape %v, torchvision %v", name, gs, ws)
	}
	g, w := got.Float64s(), want.Float64s()
	worst, at := 0.0, 0
	for i := range g {
		if d := math.Abs(g[i] - w[i]); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	t.Logf("%-22s max |ours - torchvision| = %.3g", name, worst)
	if !(worst <= tol) {
		t.Errorf("%s: element %d is %v, torchvision %v (max diff %.3g > %.3g)", name, at, g[at], w[at], worst, tol)
	}
	return worst
}

// Tolerances measured against torchvision 0.14 / torch 1.13 on CPU (float32): crops differ by float32
// rounding of the sampling weights (grid_sample and upsample_bilinear2d sum the four taps in another
// order, and (2p+1)/W-1 is not exact for W = 24); the colour ops by a few ulps.
const (
	cropTol  = 2e-6
	colorTol = 1e-6
)

func TestResizedCropFlipMatchesTorchvision(t *testing.T) {
	torch.WithScope(func() {
		x := ToFloat(fixtureTensor(t, "img8"))
		boxes := fixtureTensor(t, "boxes")
		flips := fixtureTensor(t, "flips")
		for _, c := range []struct {
			tag  string
			h, w int64
		}{{"up", 32, 32}, {"down", 7, 9}, {"same", 16, 16}} {
			got := ResizedCropFlip(x, boxes, flips, c.h, c.w)
			maxDiff(t, "resized_crop+hflip "+c.tag, got, fixtureTensor(t, "crop_"+c.tag), cropTol)
		}
		// a crop as large as the output is a copy of the box (up to the grid's rounding for W = 24)
		got := ResizedCropFlip(x.Narrow(0, 3, 1), boxes.Narrow(0, 3, 1), nil, 16, 16)
		want := x.Narrow(0, 3, 1).Narrow(2, 0, 16).Narrow(3, 0, 16)
		maxDiff(t, "crop same-size copy", got, want, cropTol)
		// on 32x32 images every grid coordinate is exact in float32
		x32 := ToFloat(randomImages(1, 3, 32, 32))
		box := torch.FromSlice([]int64{5, 7, 16, 16}, 1, 4)
		maxDiff(t, "crop same-size 32x32", ResizedCropFlip(x32, box, nil, 16, 16), x32.Narrow(2, 5, 16).Narrow(3, 7, 16), 0)
	})
}

func TestColorOpsMatchTorchvision(t *testing.T) {
	torch.WithScope(func() {
		x := ToFloat(fixtureTensor(t, "img8"))
		ops := map[string]func(x, f *torch.Tensor) *torch.Tensor{
			"brightness": AdjustBrightness, "contrast": AdjustContrast, "saturation": AdjustSaturation, "hue": AdjustHue,
		}
		for _, name := range []string{"brightness", "contrast", "saturation", "hue"} {
			got := ops[name](x, fixtureTensor(t, "fac_"+name))
			maxDiff(t, "adjust_"+name, got, fixtureTensor(t, "adj_"+name), colorTol)
		}
		maxDiff(t, "rgb_to_grayscale", RGBToGrayscale(x), fixtureTensor(t, "gray"), colorTol)
		mean, std := []float64{0.4914, 0.4822, 0.4465}, []float64{0.2470, 0.2435, 0.2616}
		maxDiff(t, "normalize", Normalize(x, mean, std), fixtureTensor(t, "normalized"), colorTol)
		x1 := x.Narrow(1, 0, 1)
		maxDiff(t, "adjust_contrast 1ch", AdjustContrast(x1, fixtureTensor(t, "fac_contrast")),
			fixtureTensor(t, "adj_contrast_1ch"), colorTol)
		one := torch.Full([]int64{x.Size(0)}, 1.4, torch.Float64, torch.CPU)
		maxDiff(t, "saturation 1ch = id", AdjustSaturation(x1, one), x1, 0)
		maxDiff(t, "hue 1ch = id", AdjustHue(x1, one.MulScalar(0.05)), x1, 0)
	})
}

func TestAugmentConfigValidate(t *testing.T) {
	if err := DefaultAugment().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		mut  func(*AugmentConfig)
		want string
	}{
		{func(c *AugmentConfig) { c.Crop.Scale = [2]float64{0.5, 0.2} }, "augment.crop.scale"},
		{func(c *AugmentConfig) { c.Crop.Scale = [2]float64{0, 1} }, "augment.crop.scale"},
		{func(c *AugmentConfig) { c.Crop.Ratio = [2]float64{-1, 1} }, "augment.crop.ratio"},
		{func(c *AugmentConfig) { c.HFlip = 1.5 }, "augment.hflip"},
		{func(c *AugmentConfig) { c.Jitter.P = math.NaN() }, "augment.color_jitter.p"},
		{func(c *AugmentConfig) { c.Jitter.Saturation = -0.1 }, "augment.color_jitter.saturation"},
		{func(c *AugmentConfig) { c.Jitter.Hue = 0.6 }, "augment.color_jitter.hue"},
		{func(c *AugmentConfig) { c.Grayscale = -1 }, "augment.grayscale"},
		{func(c *AugmentConfig) { c.Size = -3 }, "augment.size"},
		{func(c *AugmentConfig) { c.Mean = []float64{0.5} }, "augment.std"},
		{func(c *AugmentConfig) { c.Mean, c.Std = []float64{0.5}, []float64{0} }, "augment.std[0]"},
	}
	for _, b := range bad {
		c := DefaultAugment()
		b.mut(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("want an error naming %s, got %v", b.want, err)
		}
	}
	c := DefaultAugment()
	c.Crop.Scale = [2]float64{0, 1}
	c.Crop.Enabled = false // a disabled crop's ranges are not checked
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if _, err := DefaultAugment().Resolve("folder", 3); err == nil || !strings.Contains(err.Error(), "augment.mean") {
		t.Errorf("folder data without mean/std: %v", err)
	}
	if _, err := DefaultAugment().Resolve("cifar10", 1); err == nil {
		t.Error("cifar10 normalisation accepted for 1-channel data")
	}
	r, err := DefaultAugment().Resolve("fashion-mnist", 1)
	if err != nil || r.Mean[0] != 0.2860 || r.Std[0] != 0.3530 {
		t.Errorf("fashion-mnist: %v %v", r, err)
	}
}

// randomImages is n uint8 images with fixed content.
func randomImages(n, c, h, w int64) *torch.Tensor {
	torch.ManualSeed(123)
	return torch.Randint(0, 256, []int64{n, c, h, w}, torch.Uint8, torch.CPU)
}

func TestAugmenterStatistics(t *testing.T) {
	torch.WithScope(func() {
		a, err := NewAugmenter(DefaultAugment(), "cifar10", 3, 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		torch.ManualSeed(1)
		const n = 20000
		p := a.Sample(n, torch.CPU)
		b := p.Boxes.Int64s()
		var fracSum, fracSq float64
		for i := 0; i < n; i++ {
			top, left, h, w := b[4*i], b[4*i+1], b[4*i+2], b[4*i+3]
			if h <= 0 || w <= 0 || top < 0 || left < 0 || top+h > 32 || left+w > 32 {
				t.Fatalf("crop %d out of the image: %v", i, b[4*i:4*i+4])
			}
			frac := float64(h*w) / 1024
			// rounding of the sides moves the area a little outside [0.2, 1]
			if frac < 0.15 || frac > 1 {
				t.Fatalf("crop %d has area fraction %v", i, frac)
			}
			r := float64(w) / float64(h)
			if r < 0.6 || r > 1.7 {
				t.Fatalf("crop %d has aspect ratio %v", i, r)
			}
			fracSum += frac
			fracSq += frac * frac
		}
		// torchvision's get_params on 32x32, 20000 draws: area fraction mean 0.5497, std 0.2064 (below
		// the 0.6 of a uniform scale: tries whose rounded sides do not fit are rejected, mostly near 1)
		mean := fracSum / n
		std := math.Sqrt(fracSq/n - mean*mean)
		t.Logf("crop area fraction mean %.4f std %.4f (torchvision 0.5497, 0.2064)", mean, std)
		if math.Abs(mean-0.5497) > 0.008 || math.Abs(std-0.2064) > 0.008 {
			t.Errorf("crop area fraction mean %v std %v, torchvision 0.5497, 0.2064", mean, std)
		}
		rate := func(name string, m *torch.Tensor, want float64) {
			r := m.To(torch.Float64).Mean().Item()
			t.Logf("%s rate %.4f (want %.2f)", name, r, want)
			if math.Abs(r-want) > 4*math.Sqrt(want*(1-want)/n) {
				t.Errorf("%s rate %v, want %v", name, r, want)
			}
		}
		rate("flip", p.Flip, 0.5)
		rate("jitter", p.Jitter, 0.8)
		rate("grayscale", p.Gray, 0.2)
		f := p.Factors
		for k, lim := range [][2]float64{{0.6, 1.4}, {0.6, 1.4}, {0.6, 1.4}, {-0.1, 0.1}} {
			col := f.Select(1, int64(k))
			lo, hi, m := col.Min().Item(), col.Max().Item(), col.Mean().Item()
			if lo < lim[0] || hi > lim[1] || math.Abs(m-(lim[0]+lim[1])/2) > 0.01 {
				t.Errorf("factor %d: range [%v, %v] mean %v, want within %v", k, lo, hi, m, lim)
			}
		}
		// each of the 4 adjustments comes first about a quarter of the time
		first := p.Order.Select(1, 0).Bincount(4).Int64s()
		for k, c := range first {
			if math.Abs(float64(c)/n-0.25) > 0.02 {
				t.Errorf("adjustment %d is first in %d of %d orders", k, c, n)
			}
		}
	})
}

func TestAugmenterViewsReproducible(t *testing.T) {
	torch.WithScope(func() {
		a, err := NewAugmenter(DefaultAugment(), "cifar10", 3, 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		x := randomImages(16, 3, 32, 32)
		torch.ManualSeed(42)
		v1, err := a.Views(x, 2)
		if err != nil {
			t.Fatal(err)
		}
		torch.ManualSeed(42)
		v2, _ := a.Views(x, 2)
		torch.ManualSeed(43)
		v3, _ := a.Views(x, 2)
		if got := v1.Shape(); !slices.Equal(got, []int64{16, 2, 3, 32, 32}) || v1.DType() != torch.Float32 {
			t.Fatalf("views %v", v1)
		}
		if d := v1.Sub(v2).Abs().Max().Item(); d != 0 {
			t.Errorf("same seed, different views (max diff %v)", d)
		}
		if d := v1.Sub(v3).Abs().Max().Item(); d == 0 {
			t.Error("different seeds gave the same views")
		}
		// the two views of an image differ
		if d := v1.Select(1, 0).Sub(v1.Select(1, 1)).Abs().Max().Item(); d == 0 {
			t.Error("both views are identical")
		}
		// normalised range: (0-mean)/std .. (1-mean)/std
		if lo, hi := v1.Min().Item(), v1.Max().Item(); lo < -0.4914/0.2435-1e-4 || hi > (1-0.4465)/0.2435+1e-4 {
			t.Errorf("values outside the normalised range: [%v, %v]", lo, hi)
		}
	})
}

// With every random step off, Views is the eval transform (an exact copy).
func TestAugmenterIdentityAndEval(t *testing.T) {
	torch.WithScope(func() {
		x := randomImages(4, 3, 12, 10)
		a, err := NewAugmenter(NoAugment(), "cifar10", 3, 12, 10)
		if err != nil {
			t.Fatal(err)
		}
		v, err := a.Views(x, 3)
		if err != nil {
			t.Fatal(err)
		}
		e, err := a.Eval(x)
		if err != nil {
			t.Fatal(err)
		}
		for k := int64(0); k < 3; k++ {
			maxDiff(t, "identity view", v.Select(1, k), e, 0)
		}
		// a different output size: eval resizes the whole image like the disabled crop does
		cfg := NoAugment()
		cfg.Size = 6
		r, err := NewAugmenter(cfg, "cifar10", 3, 12, 10)
		if err != nil {
			t.Fatal(err)
		}
		rv, _ := r.Views(x, 1)
		re, err := r.Eval(x)
		if err != nil {
			t.Fatal(err)
		}
		maxDiff(t, "resized eval = view", rv.Select(1, 0), re, 0)
		if _, err := a.Views(x.Narrow(2, 0, 8), 2); err == nil {
			t.Error("wrong image size accepted")
		}
		// 1-channel data: jitter and grayscale reduce to brightness/contrast, no error
		m, err := NewAugmenter(DefaultAugment(), "mnist", 1, 28, 28)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Views(randomImages(8, 1, 28, 28), 2); err != nil {
			t.Fatal(err)
		}
	})
}

// The per-image jitter order is honoured: applying the sampled adjustments one image at a time, in
// that image's order, gives the batched result.
func TestJitterOrderPerImage(t *testing.T) {
	torch.WithScope(func() {
		cfg := DefaultAugment()
		cfg.Crop.Enabled, cfg.HFlip, cfg.Grayscale, cfg.Jitter.P = false, 0, 0, 1
		cfg.Mean, cfg.Std = []float64{0, 0, 0}, []float64{1, 1, 1}
		a, err := NewAugmenter(cfg, "", 3, 8, 8)
		if err != nil {
			t.Fatal(err)
		}
		x := ToFloat(randomImages(12, 3, 8, 8))
		torch.ManualSeed(5)
		p := a.Sample(12, torch.CPU)
		got := a.Apply(x, p)
		order := p.Order.Int64s()
		ops := []func(x, f *torch.Tensor) *torch.Tensor{AdjustBrightness, AdjustContrast, AdjustSaturation, AdjustHue}
		for i := int64(0); i < 12; i++ {
			xi := x.Narrow(0, i, 1)
			for k := 0; k < 4; k++ {
				op := order[int(i)*4+k]
				xi = ops[op](xi, p.Factors.Narrow(0, i, 1).Select(1, op))
			}
			maxDiff(t, "jitter image", got.Narrow(0, i, 1), xi, 1e-6)
		}
	})
}

// Drawing the parameters and augmenting a batch (and the eval transform) copy nothing between host
// and device: on a GPU neither waits for the device.
func TestAugmenterMakesNoHostCopies(t *testing.T) {
	torch.WithScope(func() {
		x := randomImages(8, 3, 16, 16)
		for _, cfg := range []AugmentConfig{DefaultAugment(), {Size: 24}, {HFlip: 0.5}} {
			a, err := NewAugmenter(cfg, "cifar10", 3, 16, 16)
			if err != nil {
				t.Fatal(err)
			}
			before := torch.HostCopies()
			if _, err := a.Views(x, 2); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Eval(x); err != nil {
				t.Fatal(err)
			}
			if n := torch.HostCopies() - before; n != 0 {
				t.Errorf("augment %+v: %d host copies, want 0", cfg, n)
			}
		}
	})
}
