package data

import (
	"fmt"
	"math"
)

// AugmentConfig is the training augmentation, the `augment:` section of a run's config. Its semantics
// are torchvision's (0.14) on float tensors, in the reference order: RandomResizedCrop, horizontal
// flip, ColorJitter applied with probability Jitter.P, RandomGrayscale, then normalisation. Set a
// probability (or jitter strength) to 0 to turn that step off.
//
// Where it differs from the reference (torchvision on PIL images, one image at a time):
//   - everything runs on float32 tensors in [0, 1] (torchvision's tensor formulas, see augment_ops.go);
//     PIL rounds to uint8 after every step, antialiases when a crop is shrunk, and has its own HSV
//     code, so PIL outputs differ by quantisation-sized amounts;
//   - grayscale weighs R by 0.2989 (torchvision's tensor code; PIL uses 0.299);
//   - the random draws come from the device's torch generator in batched form, so a seed gives other
//     (identically distributed) crops, flips and factors than torchvision's per-image draws.
type AugmentConfig struct {
	// Size is the side of the square output; 0 keeps the input's H x W.
	Size int        `yaml:"size"`
	Crop CropConfig `yaml:"crop"`
	// HFlip is the probability of a horizontal flip.
	HFlip  float64      `yaml:"hflip"`
	Jitter JitterConfig `yaml:"color_jitter"`
	// Grayscale is RandomGrayscale's probability; ignored for 1-channel data, where it is the identity.
	Grayscale float64 `yaml:"grayscale"`
	// Mean and Std normalise each channel after augmentation (and in the eval transform); empty means
	// the dataset's standard values (NormalizationFor).
	Mean []float64 `yaml:"mean,omitempty"`
	Std  []float64 `yaml:"std,omitempty"`
}

// CropConfig is RandomResizedCrop's: a crop of area fraction in Scale and aspect ratio (w/h) in Ratio,
// resized bilinearly to the output size. When disabled, the whole image is resized (an exact copy when
// the size does not change).
type CropConfig struct {
	Enabled bool       `yaml:"enabled"`
	Scale   [2]float64 `yaml:"scale"`
	Ratio   [2]float64 `yaml:"ratio"`
}

// JitterConfig is ColorJitter's: brightness, contrast and saturation factors are drawn from
// [max(0, 1-x), 1+x], the hue shift from [-Hue, Hue]; a strength of 0 leaves that adjustment out.
// P is the probability that an image is jittered at all (RandomApply).
type JitterConfig struct {
	P          float64 `yaml:"p"`
	Brightness float64 `yaml:"brightness"`
	Contrast   float64 `yaml:"contrast"`
	Saturation float64 `yaml:"saturation"`
	Hue        float64 `yaml:"hue"`
}

// DefaultAugment is the reference augmentation (METHOD.md), with the dataset's standard normalisation.
func DefaultAugment() AugmentConfig {
	return AugmentConfig{
		Crop:      CropConfig{Enabled: true, Scale: [2]float64{0.2, 1}, Ratio: [2]float64{3.0 / 4, 4.0 / 3}},
		HFlip:     0.5,
		Jitter:    JitterConfig{P: 0.8, Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1},
		Grayscale: 0.2,
	}
}

// NoAugment only converts to float and normalises (the eval transform as a training config).
func NoAugment() AugmentConfig { return AugmentConfig{} }

// normStats holds per-channel normalisation constants of the datasets we know.
var normStats = map[string][2][]float64{
	"cifar10":       {{0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}},
	"cifar10-jpg":   {{0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}},
	"cifar100":      {{0.5071, 0.4865, 0.4409}, {0.2673, 0.2564, 0.2762}},
	"mnist":         {{0.1307}, {0.3081}},
	"fashion-mnist": {{0.2860}, {0.3530}},
}

// NormalizationFor is the standard per-channel mean and std of a named dataset (see SourceNames) with
// the given channel count. Datasets with no published statistics (folder, csv, the synthetic sets)
// return an error that says to set augment.mean and augment.std (ChannelStats measures them).
func NormalizationFor(name string, channels int) (mean, std []float64, err error) {
	s, ok := normStats[name]
	if !ok {
		return nil, nil, fmt.Errorf("augment.mean: dataset %q has no standard normalisation; set augment.mean and augment.std (%d values each; data.ChannelStats measures them)", name, channels)
	}
	if len(s[0]) != channels {
		return nil, nil, fmt.Errorf("augment.mean: the standard normalisation of %q has %d channel(s), the data has %d; set augment.mean and augment.std", name, len(s[0]), channels)
	}
	return append([]float64(nil), s[0]...), append([]float64(nil), s[1]...), nil
}

// NormalizationOf is the normalisation for d, a split of the named dataset: the standard values when
// the dataset has published ones, else d's own channel statistics, with a constant channel (coloured
// MNIST's blue) left unscaled instead of divided by zero.
func NormalizationOf(name string, d *Dataset) (mean, std []float64) {
	if mean, std, err := NormalizationFor(name, d.C); err == nil {
		return mean, std
	}
	mean, std = ChannelStats(d)
	for i, s := range std {
		if s == 0 {
			std[i] = 1
		}
	}
	return mean, std
}

// ChannelStats measures the per-channel mean and (population) std of d's pixels scaled to [0, 1].
func ChannelStats(d *Dataset) (mean, std []float64) {
	mean, std = make([]float64, d.C), make([]float64, d.C)
	hw := d.H * d.W
	for c := 0; c < d.C; c++ {
		var s, ss float64
		for i := 0; i < d.N; i++ {
			for _, p := range d.Pixels[(i*d.C+c)*hw : (i*d.C+c+1)*hw] {
				v := float64(p) / 255
				s += v
				ss += v * v
			}
		}
		n := float64(d.N * hw)
		if n > 0 {
			mean[c] = s / n
			std[c] = math.Sqrt(math.Max(ss/n-mean[c]*mean[c], 0))
		}
	}
	return mean, std
}

// Validate checks ranges; errors name the config field (augment.<field>).
func (c AugmentConfig) Validate() error {
	prob := func(field string, p float64) error {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("augment.%s = %v: a probability must be in [0, 1]", field, p)
		}
		return nil
	}
	if c.Size < 0 {
		return fmt.Errorf("augment.size = %d: must be positive (or 0 to keep the input size)", c.Size)
	}
	if c.Crop.Enabled {
		s, r := c.Crop.Scale, c.Crop.Ratio
		if !(s[0] > 0 && s[0] <= s[1] && s[1] <= 1) {
			return fmt.Errorf("augment.crop.scale = %v: want 0 < min <= max <= 1 (area fraction of the crop)", s)
		}
		if !(r[0] > 0 && r[0] <= r[1] && !math.IsInf(r[1], 0)) {
			return fmt.Errorf("augment.crop.ratio = %v: want 0 < min <= max (aspect ratio w/h of the crop)", r)
		}
	}
	if err := prob("hflip", c.HFlip); err != nil {
		return err
	}
	if err := prob("color_jitter.p", c.Jitter.P); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"brightness", c.Jitter.Brightness}, {"contrast", c.Jitter.Contrast}, {"saturation", c.Jitter.Saturation}} {
		if !(f.v >= 0 && !math.IsInf(f.v, 0)) {
			return fmt.Errorf("augment.color_jitter.%s = %v: must be a non-negative number (factors are drawn from [max(0, 1-x), 1+x])", f.name, f.v)
		}
	}
	if !(c.Jitter.Hue >= 0 && c.Jitter.Hue <= 0.5) {
		return fmt.Errorf("augment.color_jitter.hue = %v: must be in [0, 0.5] (shifts are drawn from [-hue, hue])", c.Jitter.Hue)
	}
	if err := prob("grayscale", c.Grayscale); err != nil {
		return err
	}
	if len(c.Mean) != len(c.Std) {
		return fmt.Errorf("augment.mean has %d values, augment.std %d: give both, one per channel, or neither", len(c.Mean), len(c.Std))
	}
	for i, s := range c.Std {
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("augment.std[%d] = %v: must be positive", i, s)
		}
		if m := c.Mean[i]; math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("augment.mean[%d] = %v: must be finite", i, m)
		}
	}
	return nil
}

// Resolve validates c for a dataset's name and channel count and fills in the standard normalisation
// when Mean/Std are empty.
func (c AugmentConfig) Resolve(dataset string, channels int) (AugmentConfig, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	if channels != 1 && channels != 3 {
		return c, fmt.Errorf("augment: images have %d channels; augmentation handles 1 (grayscale) or 3 (RGB)", channels)
	}
	if len(c.Mean) == 0 {
		m, s, err := NormalizationFor(dataset, channels)
		if err != nil {
			return c, err
		}
		c.Mean, c.Std = m, s
	} else if len(c.Mean) != channels {
		return c, fmt.Errorf("augment.mean has %d values for %d-channel images", len(c.Mean), channels)
	}
	c.Mean = append([]float64(nil), c.Mean...)
	c.Std = append([]float64(nil), c.Std...)
	return c, nil
}
