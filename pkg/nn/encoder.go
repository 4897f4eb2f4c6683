// Package nn builds the models spreadtrain trains (ResNet encoders, heads, the decoder lives in
// pkg/autoenc) and the training machinery around parameters: optimizers, learning-rate schedules,
// gradient clipping and state files.
package nn

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// EncoderConfig selects an image encoder.
type EncoderConfig struct {
	Arch       string  `yaml:"arch"`        // resnet18, resnet34 or resnet50
	Stem       string  `yaml:"stem"`        // cifar (3x3 conv, no max-pool) or imagenet (7x7/2 + max-pool)
	Width      float64 `yaml:"width"`       // multiplier on torchvision's 64 base channels (1 = torchvision)
	InChannels int     `yaml:"in_channels"` // 1 or 3
}

var resnetLayers = map[string]struct {
	layers     [4]int64
	bottleneck bool
}{
	"resnet18": {[4]int64{2, 2, 2, 2}, false},
	"resnet34": {[4]int64{3, 4, 6, 3}, false},
	"resnet50": {[4]int64{3, 4, 6, 3}, true},
}

// Archs lists the encoder names NewEncoder accepts.
func Archs() []string {
	var names []string
	for k := range resnetLayers {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Encoder maps images [N, C, H, W] to features [N, OutDim].
type Encoder struct {
	*torch.Module
	Config EncoderConfig
	OutDim int64
}

// Validate checks the configuration and names the field at fault.
func (c EncoderConfig) Validate() error {
	if _, ok := resnetLayers[c.Arch]; !ok {
		return fmt.Errorf("encoder.arch %q: want one of %s", c.Arch, strings.Join(Archs(), ", "))
	}
	if c.Stem != "cifar" && c.Stem != "imagenet" {
		return fmt.Errorf("encoder.stem %q: want cifar or imagenet", c.Stem)
	}
	if !(c.Width > 0) || c.Width > 16 {
		return fmt.Errorf("encoder.width %v: want a multiplier in (0, 16]", c.Width)
	}
	if c.InChannels != 1 && c.InChannels != 3 {
		return fmt.Errorf("encoder.in_channels %d: want 1 or 3", c.InChannels)
	}
	return nil
}

// BaseWidth is the channel count of the first stage.
func (c EncoderConfig) BaseWidth() int64 {
	return max(1, int64(math.Round(64*c.Width)))
}

// NewEncoder builds a freshly initialised encoder on the CPU.
func NewEncoder(c EncoderConfig) (enc *Encoder, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	spec := resnetLayers[c.Arch]
	err = torch.Catch(func() {
		m, dim := torch.NewResNet(torch.ResNetSpec{
			Bottleneck: spec.bottleneck, Layers: spec.layers, CIFARStem: c.Stem == "cifar",
			Width: c.BaseWidth(), InChannels: int64(c.InChannels),
		})
		enc = &Encoder{Module: m, Config: c, OutDim: dim}
	})
	return enc, err
}

// Prefixed names a module's parameters (or buffers) under a prefix, as a parent module would.
func Prefixed(prefix string, named []torch.Named) []torch.Named {
	out := make([]torch.Named, len(named))
	for i, n := range named {
		out[i] = torch.Named{Name: prefix + "." + n.Name, Tensor: n.Tensor}
	}
	return out
}

// CountParams is the number of scalar parameters.
func CountParams(named []torch.Named) int64 {
	var n int64
	for _, p := range named {
		n += p.Tensor.Numel()
	}
	return n
}
