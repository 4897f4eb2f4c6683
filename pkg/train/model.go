package train

import (
	"fmt"

	"github.com/spreadtrain/spreadtrain/pkg/autoenc"
	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Model is everything a run trains: the encoder, and the parts its method needs.
type Model struct {
	Encoder *nn.Encoder
	// EncoderB is the second backbone of a two-backbone method (thanos-2b, supcon-2b), nil otherwise.
	// It has Encoder's architecture and its own weights; the representation is both, concatenated.
	EncoderB   *nn.Encoder
	Head       *torch.Module    // projection head, nil for model.head none
	Classifier *torch.Module    // linear head on the coarse labels (on the representation), nil when gamma is 0
	Decoder    *autoenc.Decoder // nil when beta is 0; reads EncoderB's output in thanos-2b
}

// Shape describes the images and labels a model is built for.
type Shape struct {
	C, H, W       int
	CoarseClasses int
}

// ShapeOf is the shape a model for cfg sees of d's images (augment.size resizes them).
func ShapeOf(cfg Config, d *data.Dataset) Shape {
	s := Shape{C: d.C, H: d.H, W: d.W, CoarseClasses: len(d.CoarseNames)}
	if cfg.Augment.Size > 0 {
		s.H, s.W = cfg.Augment.Size, cfg.Augment.Size
	}
	return s
}

// NewModel builds a freshly initialised model (on the CPU) for the normalised configuration.
func NewModel(cfg Config, s Shape) (*Model, error) {
	ec := cfg.Model.EncoderConfig
	ec.InChannels = s.C
	if ec.Arch == "vit" {
		if s.H != s.W {
			return nil, fmt.Errorf("model.arch vit: needs square images, the data are %dx%d", s.H, s.W)
		}
		ec.ImageSize = s.H // the size the encoder receives (augment.size when set)
	}
	enc, err := nn.NewEncoder(ec)
	if err != nil {
		return nil, err
	}
	m := &Model{Encoder: enc}
	if cfg.Method.TwoBackbones() {
		if cfg.Model.Head != "none" {
			enc.Free()
			return nil, fmt.Errorf("model.head %s: the two-backbone methods use no projection head (as the reference code)", cfg.Model.Head)
		}
		if m.EncoderB, err = nn.NewEncoder(ec); err != nil {
			enc.Free()
			return nil, err
		}
	}
	err = torch.Catch(func() {
		if cfg.Model.Head == "mlp" && cfg.Method.Name != "ce" {
			m.Head = torch.NewMLP(enc.OutDim, int64(cfg.Model.HeadHidden), int64(cfg.Model.HeadDim), false)
		}
		if cfg.Method.Gamma > 0 {
			m.Classifier = torch.NewLinear(m.EmbedDim(), int64(s.CoarseClasses), true)
		}
	})
	if err != nil {
		return nil, err
	}
	if cfg.Method.Beta > 0 {
		m.Decoder, err = autoenc.New(cfg.Decoder, enc.OutDim, int64(s.C), int64(s.H), int64(s.W), s.CoarseClasses)
		if err != nil {
			return nil, fmt.Errorf("decoder: %w", err)
		}
	}
	return m, nil
}

// Parameters are all trainable tensors, named by part: encoder.*, encoder_b.*, head.*, classifier.*,
// decoder.*.
func (m *Model) Parameters() []torch.Named {
	ps := nn.Prefixed("encoder", m.Encoder.Parameters())
	if m.EncoderB != nil {
		ps = append(ps, nn.Prefixed("encoder_b", m.EncoderB.Parameters())...)
	}
	if m.Head != nil {
		ps = append(ps, nn.Prefixed("head", m.Head.Parameters())...)
	}
	if m.Classifier != nil {
		ps = append(ps, nn.Prefixed("classifier", m.Classifier.Parameters())...)
	}
	if m.Decoder != nil {
		ps = append(ps, m.Decoder.Parameters()...)
	}
	return ps
}

// Buffers are the BatchNorm statistics of every part.
func (m *Model) Buffers() []torch.Named {
	bs := nn.Prefixed("encoder", m.Encoder.Buffers())
	if m.EncoderB != nil {
		bs = append(bs, nn.Prefixed("encoder_b", m.EncoderB.Buffers())...)
	}
	if m.Head != nil {
		bs = append(bs, nn.Prefixed("head", m.Head.Buffers())...)
	}
	if m.Decoder != nil {
		bs = append(bs, m.Decoder.Buffers()...)
	}
	return bs
}

// State is parameters and buffers: what a checkpoint holds of the model.
func (m *Model) State() []torch.Named { return append(m.Parameters(), m.Buffers()...) }

// SetTrain switches every part between training and evaluation behaviour.
func (m *Model) SetTrain(on bool) {
	m.Encoder.SetTrain(on)
	if m.EncoderB != nil {
		m.EncoderB.SetTrain(on)
	}
	if m.Head != nil {
		m.Head.SetTrain(on)
	}
	if m.Decoder != nil {
		m.Decoder.SetTrain(on)
	}
}

// ToDevice moves every part.
func (m *Model) ToDevice(dev torch.Device) {
	m.Encoder.ToDevice(dev)
	if m.EncoderB != nil {
		m.EncoderB.ToDevice(dev)
	}
	if m.Head != nil {
		m.Head.ToDevice(dev)
	}
	if m.Classifier != nil {
		m.Classifier.ToDevice(dev)
	}
	if m.Decoder != nil {
		m.Decoder.ToDevice(dev)
	}
}

// ChannelsLast lays out the convolution weights of the encoder and the decoder channels-last.
func (m *Model) ChannelsLast() {
	m.Encoder.ChannelsLast()
	if m.EncoderB != nil {
		m.EncoderB.ChannelsLast()
	}
	if m.Decoder != nil {
		m.Decoder.ChannelsLast()
	}
}

// Free releases every part.
func (m *Model) Free() {
	m.Encoder.Free()
	if m.EncoderB != nil {
		m.EncoderB.Free()
	}
	m.Head.Free()
	m.Classifier.Free()
	if m.Decoder != nil {
		m.Decoder.Free()
	}
}

// EmbedDim is the width of the representation: the encoder's, or both backbones' side by side.
func (m *Model) EmbedDim() int64 {
	if m.EncoderB != nil {
		return m.Encoder.OutDim + m.EncoderB.OutDim
	}
	return m.Encoder.OutDim
}

// Embed is the representation that evaluation, embed and export read: the encoder's features, or for
// two backbones their L2-normalised features concatenated (so neither backbone outweighs the other
// in a probe or a kNN vote; the reference code evaluates its two-backbone Thanos the same way).
func (m *Model) Embed(x *torch.Tensor) *torch.Tensor {
	h := m.Encoder.Forward(x)
	if m.EncoderB == nil {
		return h
	}
	return joinBackbones(h, m.EncoderB.Forward(x))
}

// joinBackbones is the two-backbone representation of features hA and hB [N, D] each.
func joinBackbones(hA, hB *torch.Tensor) *torch.Tensor {
	return torch.Cat([]*torch.Tensor{hA.Normalize(2, 1, 1e-12), hB.Normalize(2, 1, 1e-12)}, 1)
}

// SetEncodersTrain switches the backbones alone between training and evaluation behaviour (the
// probes freeze them while a head trains).
func (m *Model) SetEncodersTrain(on bool) {
	m.Encoder.SetTrain(on)
	if m.EncoderB != nil {
		m.EncoderB.SetTrain(on)
	}
}
