// Package nn builds the models spreadtrain trains (ResNet and ViT encoders, heads, the decoder lives in
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
	Arch string `yaml:"arch"` // resnet18, resnet34, resnet50 or vit
	// ResNets: cifar (3x3 conv, no max-pool) or imagenet (7x7/2 + max-pool). The ViT has no stem: it
	// accepts either value (or none) and ignores it.
	Stem string `yaml:"stem"`
	// ResNets: multiplier on torchvision's 64 base channels (1 = torchvision). ViT: multiplier on the
	// token width d = 256, rounded to a multiple of the 8 heads (at least 8); the MLP width is 2d.
	Width      float64 `yaml:"width"`
	InChannels int     `yaml:"in_channels"` // 1 or 3
	// ImageSize is the side of the (square) input images, 0 meaning 32. Only the ViT uses it (its
	// position embeddings are built for one size, and it must be a multiple of the 4-pixel patch); the
	// ResNets pool globally and take any size.
	ImageSize int `yaml:"image_size"`
	// Dropout is the ViT's dropout rate (after the position embeddings, on the attention probabilities,
	// after attention and after both MLP layers; training mode only). 0 for the ResNets.
	Dropout float64 `yaml:"dropout"`
}

// The reference code's ViT (HazyResearch/thanos-code, METHOD.md): 4x4 patches, d = 256, 7 pre-norm
// blocks, 8 heads, MLP 2d = 512, CLS output.
const (
	ViTPatch   = 4
	ViTBaseDim = 256
	ViTDepth   = 7
	ViTHeads   = 8
	// DefaultImageSize is what ImageSize 0 means.
	DefaultImageSize = 32
)

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
	names := []string{"vit"}
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
	_, resnet := resnetLayers[c.Arch]
	vit := c.Arch == "vit"
	if !resnet && !vit {
		return fmt.Errorf("encoder.arch %q: want one of %s", c.Arch, strings.Join(Archs(), ", "))
	}
	if c.Stem != "cifar" && c.Stem != "imagenet" && !(vit && c.Stem == "") {
		return fmt.Errorf("encoder.stem %q: want cifar or imagenet", c.Stem)
	}
	if c.ImageSize < 0 {
		return fmt.Errorf("encoder.image_size %d: want a positive size (or 0 for %d)", c.ImageSize, DefaultImageSize)
	}
	if vit && c.ImageSizeOrDefault()%ViTPatch != 0 {
		return fmt.Errorf("encoder.image_size %d: the vit needs a multiple of its %d-pixel patch", c.ImageSize, ViTPatch)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return fmt.Errorf("encoder.dropout %v: want a rate in [0, 1)", c.Dropout)
	}
	if resnet && c.Dropout != 0 {
		return fmt.Errorf("encoder.dropout %v: only the vit has dropout", c.Dropout)
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

// ImageSizeOrDefault is ImageSize with 0 read as DefaultImageSize.
func (c EncoderConfig) ImageSizeOrDefault() int {
	if c.ImageSize == 0 {
		return DefaultImageSize
	}
	return c.ImageSize
}

// ViTDim is the ViT's token width: round(256 * Width) to a multiple of the heads, at least one per head.
func (c EncoderConfig) ViTDim() int64 {
	return max(ViTHeads, ViTHeads*int64(math.Round(ViTBaseDim*c.Width/ViTHeads)))
}

// ViTSpec is the ViT that NewEncoder builds for arch vit: the reference code's flavour (LayerNorm after
// the patch projection, no qkv bias, no attention output projection), 4x4 patches, 7 blocks, 8 heads,
// d = ViTDim(), MLP 2d, square ImageSizeOrDefault() inputs.
func (c EncoderConfig) ViTSpec() torch.ViTSpec {
	d := c.ViTDim()
	size := int64(c.ImageSizeOrDefault())
	return torch.ViTSpec{
		ImageH: size, ImageW: size, InChannels: int64(c.InChannels), Patch: ViTPatch,
		Dim: d, Depth: ViTDepth, Heads: ViTHeads, MLPDim: 2 * d, Dropout: c.Dropout,
		EmbedNorm: true,
	}
}

// NewEncoder builds a freshly initialised encoder on the CPU.
func NewEncoder(c EncoderConfig) (enc *Encoder, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Arch == "vit" {
		err = torch.Catch(func() {
			m, dim := torch.NewViT(c.ViTSpec())
			enc = &Encoder{Module: m, Config: c, OutDim: dim}
		})
		return enc, err
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
