package data

import (
	"fmt"
	"math"
)

// Synthetic spurious-correlation datasets: a core feature (the digit) decides the label, a spurious
// one (colour, background) agrees with it on a chosen fraction of samples. A training set with
// agreement 0.95 and a test set with 0.5 (independent) stand in for Waterbirds and CelebA, which
// cannot be downloaded here. Both take already loaded datasets and are deterministic in their seed.

// DigitCoarseNames are the coarse classes of the synthetic sets: the paper's MNIST split.
var DigitCoarseNames = []string{"digit<5", "digit>=5"}

// ColoredMNISTGroupNames name the groups of ColoredMNIST: group = 2*coarse + colour.
var ColoredMNISTGroupNames = []string{"digit<5/red", "digit<5/green", "digit>=5/red", "digit>=5/green"}

// WaterbirdsLikeGroupNames name the groups of WaterbirdsLike with CIFAR-10 vehicle/animal
// backgrounds: group = 2*coarse + background coarse class.
var WaterbirdsLikeGroupNames = []string{"digit<5/vehicle", "digit<5/animal", "digit>=5/vehicle", "digit>=5/animal"}

// digitCoarse checks that src is a one-channel digit set and returns each sample's coarse label.
func digitCoarse(src *Dataset, what string) ([]int64, error) {
	if err := src.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if src.C != 1 || len(src.FineNames) != 10 {
		return nil, fmt.Errorf("%s: want a one-channel 10-class digit set (MNIST), got C=%d with %d fine classes", what, src.C, len(src.FineNames))
	}
	coarse := make([]int64, src.N)
	for i, f := range src.Fine {
		if f < 0 {
			return nil, fmt.Errorf("%s: %s: digit unknown", what, src.SourceOf(i))
		}
		if f >= 5 {
			coarse[i] = 1
		}
	}
	return coarse, nil
}

// spuriousAttribute returns, per sample, the spurious attribute: equal to the label on exactly
// round(agreement*n) samples chosen by a seeded shuffle, the other value elsewhere.
func spuriousAttribute(labels []int64, agreement float64, r rng) ([]int64, error) {
	if !(agreement >= 0 && agreement <= 1) {
		return nil, fmt.Errorf("agreement %v: want a fraction in [0, 1]", agreement)
	}
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	r.shuffle(order)
	agree := int(math.Round(agreement * float64(len(labels))))
	attr := make([]int64, len(labels))
	for k, i := range order {
		attr[i] = labels[i]
		if k >= agree {
			attr[i] = 1 - labels[i]
		}
	}
	return attr, nil
}

// ColoredMNIST colours each digit of src (one-channel MNIST) red or green: coarse = digit>=5, colour
// (0 red, 1 green) equals the coarse label on exactly round(agreement*N) samples. Use e.g. 0.95 for
// training and 0.5 for an independent test set. Fine is the digit, Group = 2*coarse + colour (see
// ColoredMNISTGroupNames); the digit's intensity goes in the red or the green channel.
func ColoredMNIST(src *Dataset, agreement float64, seed uint64) (*Dataset, error) {
	coarse, err := digitCoarse(src, "coloured MNIST")
	if err != nil {
		return nil, err
	}
	colour, err := spuriousAttribute(coarse, agreement, newRNG(seed, streamSynth))
	if err != nil {
		return nil, fmt.Errorf("coloured MNIST: %w", err)
	}
	plane := src.H * src.W
	out := &Dataset{
		Name: fmt.Sprintf("colored-mnist-%s-agree%g", src.Name, agreement), N: src.N, C: 3, H: src.H, W: src.W,
		Pixels: make([]uint8, src.N*3*plane), Coarse: coarse, Fine: append([]int64(nil), src.Fine...),
		Group: make([]int64, src.N), CoarseNames: append([]string(nil), DigitCoarseNames...),
		FineNames: append([]string(nil), src.FineNames...),
	}
	if src.Source != nil {
		out.Source = append([]string(nil), src.Source...)
	}
	for i := 0; i < src.N; i++ {
		ch := int(colour[i]) // red is channel 0, green channel 1
		copy(out.Image(i)[ch*plane:(ch+1)*plane], src.Image(i))
		out.Group[i] = 2*coarse[i] + colour[i]
	}
	return out, out.Validate()
}

// WaterbirdsLike pastes each digit of digits (one-channel MNIST, at most the backgrounds' size) in
// white onto a colour background from backgrounds, a two-coarse-class set such as CIFAR-10 after
// CIFAR10VehicleAnimalMap. Coarse = digit>=5; the background's coarse class equals it on exactly
// round(agreement*N) samples, and the background image is drawn at random (seeded) from that class.
// Fine is the digit, Group = 2*coarse + background class (see WaterbirdsLikeGroupNames).
func WaterbirdsLike(digits, backgrounds *Dataset, agreement float64, seed uint64) (*Dataset, error) {
	coarse, err := digitCoarse(digits, "waterbirds-like digits")
	if err != nil {
		return nil, err
	}
	if err := backgrounds.Validate(); err != nil {
		return nil, fmt.Errorf("waterbirds-like backgrounds: %w", err)
	}
	if backgrounds.C != 3 || len(backgrounds.CoarseNames) != 2 {
		return nil, fmt.Errorf("waterbirds-like backgrounds: want 3 channels and 2 coarse classes (apply CIFAR10VehicleAnimalMap), got C=%d with %d", backgrounds.C, len(backgrounds.CoarseNames))
	}
	if digits.H > backgrounds.H || digits.W > backgrounds.W {
		return nil, fmt.Errorf("waterbirds-like: %dx%d digits do not fit on %dx%d backgrounds", digits.H, digits.W, backgrounds.H, backgrounds.W)
	}
	var pool [2][]int
	for i, c := range backgrounds.Coarse {
		pool[c] = append(pool[c], i)
	}
	if len(pool[0]) == 0 || len(pool[1]) == 0 {
		return nil, fmt.Errorf("waterbirds-like backgrounds: a coarse class has no images (%d and %d)", len(pool[0]), len(pool[1]))
	}
	r := newRNG(seed, streamSynth)
	place, err := spuriousAttribute(coarse, agreement, r)
	if err != nil {
		return nil, fmt.Errorf("waterbirds-like: %w", err)
	}
	H, W := backgrounds.H, backgrounds.W
	top, left := (H-digits.H)/2, (W-digits.W)/2
	out := &Dataset{
		Name: fmt.Sprintf("waterbirds-like-%s-agree%g", digits.Name, agreement), N: digits.N, C: 3, H: H, W: W,
		Pixels: make([]uint8, digits.N*3*H*W), Coarse: coarse, Fine: append([]int64(nil), digits.Fine...),
		Group: make([]int64, digits.N), CoarseNames: append([]string(nil), DigitCoarseNames...),
		FineNames: append([]string(nil), digits.FineNames...), Source: make([]string, digits.N),
	}
	for i := 0; i < digits.N; i++ {
		b := place[i]
		bg := pool[b][r.intN(len(pool[b]))]
		img := out.Image(i)
		copy(img, backgrounds.Image(bg))
		digit := digits.Image(i)
		for y := 0; y < digits.H; y++ {
			for x := 0; x < digits.W; x++ {
				a := uint32(digit[y*digits.W+x]) // the digit's intensity is its opacity
				if a == 0 {
					continue
				}
				for c := 0; c < 3; c++ {
					p := &img[c*H*W+(top+y)*W+left+x]
					*p = uint8((uint32(*p)*(255-a) + 255*a + 127) / 255)
				}
			}
		}
		out.Group[i] = 2*coarse[i] + b
		out.Source[i] = fmt.Sprintf("%s on %s", digits.SourceOf(i), backgrounds.SourceOf(bg))
	}
	return out, out.Validate()
}
