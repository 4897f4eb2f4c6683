// Package autoenc is the autoencoder half of Thanos: a ResNet-18-shaped decoder that reconstructs the
// augmented, normalised view from its embedding, trained jointly with the class-supervised losses so
// that the encoder keeps within-class detail (METHOD.md, "Autoencoder").
package autoenc

import (
	"fmt"
	"math"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Config parameterises the decoder.
type Config struct {
	Width float64 `yaml:"width"` // multiplier on the reference 64 base channels (512-256-128-64-64)
	// Conditional joins a learned class embedding to the code, so the decoder knows the label; the
	// reference code's decoder gets no label (false).
	Conditional bool `yaml:"conditional"`
	ClassEmbDim int  `yaml:"class_emb_dim"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if !(c.Width > 0) || c.Width > 16 {
		return fmt.Errorf("decoder.width %v: want a multiplier in (0, 16]", c.Width)
	}
	if c.Conditional && c.ClassEmbDim < 1 {
		return fmt.Errorf("decoder.class_emb_dim %d: must be >= 1 for a conditional decoder", c.ClassEmbDim)
	}
	return nil
}

// Decoder maps embeddings [N, D] (and labels, when conditional) to images [N, C, H, W].
type Decoder struct {
	cfg      Config
	net      *torch.Module
	classEmb *torch.Module // nil unless conditional
	classes  int64
}

// New builds a decoder from inDim-dimensional codes to c x h x w images; numClasses is needed only
// for a conditional decoder.
func New(cfg Config, inDim, c, h, w int64, numClasses int) (d *Decoder, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if inDim < 1 || c < 1 || h < 1 || w < 1 {
		return nil, fmt.Errorf("decoder: bad sizes in=%d out=%dx%dx%d", inDim, c, h, w)
	}
	if cfg.Conditional && numClasses < 1 {
		return nil, fmt.Errorf("decoder: a conditional decoder needs the number of classes")
	}
	width := max(1, int64(math.Round(64*cfg.Width)))
	err = torch.Catch(func() {
		d = &Decoder{cfg: cfg, classes: int64(numClasses)}
		codeDim := inDim
		if cfg.Conditional {
			d.classEmb = torch.NewEmbedding(int64(numClasses), int64(cfg.ClassEmbDim))
			codeDim += int64(cfg.ClassEmbDim)
		}
		d.net = torch.NewDecoder(codeDim, width, c, h, w)
	})
	return d, err
}

// Forward decodes embeddings h [N, D]; labels [N] (int64) are used only by a conditional decoder.
func (d *Decoder) Forward(h, labels *torch.Tensor) *torch.Tensor {
	code := h
	if d.classEmb != nil {
		if labels == nil {
			panic(&torch.Error{Op: "decoder", Msg: "a conditional decoder needs labels"})
		}
		code = torch.Cat([]*torch.Tensor{h, d.classEmb.Forward(labels)}, 1)
	}
	return d.net.Forward(code)
}

// Loss is the mean squared error between the reconstruction of h and the target view.
func (d *Decoder) Loss(h, labels, target *torch.Tensor) *torch.Tensor {
	return torch.MSELoss(d.Forward(h, labels), target, torch.ReduceMean)
}

// Parameters are the trainable tensors, named under "decoder." and "class_embedding.".
func (d *Decoder) Parameters() []torch.Named {
	ps := nn.Prefixed("decoder", d.net.Parameters())
	if d.classEmb != nil {
		ps = append(ps, nn.Prefixed("class_embedding", d.classEmb.Parameters())...)
	}
	return ps
}

// Buffers are the decoder's BatchNorm statistics.
func (d *Decoder) Buffers() []torch.Named { return nn.Prefixed("decoder", d.net.Buffers()) }

// SetTrain switches BatchNorm between batch and running statistics.
func (d *Decoder) SetTrain(on bool) { d.net.SetTrain(on) }

// ToDevice moves the decoder.
func (d *Decoder) ToDevice(dev torch.Device) {
	d.net.ToDevice(dev)
	if d.classEmb != nil {
		d.classEmb.ToDevice(dev)
	}
}

// ChannelsLast lays out the decoder's convolution weights channels-last (faster on CUDA).
func (d *Decoder) ChannelsLast() { d.net.ChannelsLast() }

// Free releases the modules.
func (d *Decoder) Free() {
	d.net.Free()
	d.classEmb.Free()
}
