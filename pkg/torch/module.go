package torch

// #include <stdlib.h>
// #include "spreadtorch.h"
import "C"

import (
	"runtime"
	"unsafe"
)

// Module is a model defined in the shim (torch::nn): one forward call, named parameters and buffers.
// Its tensors belong to it; Free releases them (the GC does too, eventually).
type Module struct {
	h C.st_module
}

func newModule(h C.st_module) *Module {
	m := &Module{h: h}
	runtime.SetFinalizer(m, (*Module).Free)
	return m
}

// Free releases the module's handle (tensors obtained from Parameters stay valid until freed).
func (m *Module) Free() {
	if m != nil && m.h != nil {
		C.st_module_free(m.h)
		m.h = nil
	}
}

func (m *Module) handle(op string) C.st_module {
	if m == nil || m.h == nil {
		fail(op, "use of a freed module")
	}
	return m.h
}

// ResNetSpec describes a torchvision-style ResNet encoder.
type ResNetSpec struct {
	Bottleneck bool     // Bottleneck blocks (ResNet-50) instead of basic blocks
	Layers     [4]int64 // blocks per stage
	CIFARStem  bool     // 3x3/1 first conv and no max-pool (for 32x32 images)
	Width      int64    // channels of the first stage (64 in torchvision)
	InChannels int64
}

// NewResNet builds the encoder; it returns the module and its output dimension.
func NewResNet(s ResNetSpec) (*Module, int64) {
	var h C.st_module
	var dim C.int64_t
	layers := s.Layers
	check(C.st_resnet_new(cbool(s.Bottleneck), (*C.int64_t)(unsafe.Pointer(&layers[0])), cbool(s.CIFARStem),
		C.int64_t(s.Width), C.int64_t(s.InChannels), &h, &dim), "resnet")
	return newModule(h), int64(dim)
}

// NewLinear is torch::nn::Linear (parameters "weight", "bias").
func NewLinear(in, out int64, bias bool) *Module {
	var h C.st_module
	check(C.st_linear_new(C.int64_t(in), C.int64_t(out), cbool(bias), &h), "linear")
	return newModule(h)
}

// NewMLP is Sequential(Linear, [BatchNorm1d], ReLU, Linear), named like torch.nn.Sequential.
func NewMLP(in, hidden, out int64, batchnorm bool) *Module {
	var h C.st_module
	check(C.st_mlp_new(C.int64_t(in), C.int64_t(hidden), C.int64_t(out), cbool(batchnorm), &h), "mlp")
	return newModule(h)
}

// NewDecoder is the ResNet-18-shaped image decoder of the autoencoder.
func NewDecoder(in, width, outChannels, outH, outW int64) *Module {
	var h C.st_module
	check(C.st_decoder_new(C.int64_t(in), C.int64_t(width), C.int64_t(outChannels), C.int64_t(outH), C.int64_t(outW), &h), "decoder")
	return newModule(h)
}

// NewEmbedding is torch::nn::Embedding (parameter "weight").
func NewEmbedding(num, dim int64) *Module {
	var h C.st_module
	check(C.st_embedding_new(C.int64_t(num), C.int64_t(dim), &h), "embedding")
	return newModule(h)
}

// Forward runs the module on x.
func (m *Module) Forward(x *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_module_forward(m.handle("forward"), x.handle("forward"), &out), "forward")
	runtime.KeepAlive(m)
	runtime.KeepAlive(x)
	return wrap(out)
}

// SetTrain switches training mode (batch statistics, dropout) on or off.
func (m *Module) SetTrain(on bool) {
	check(C.st_module_train(m.handle("train"), cbool(on)), "train")
	runtime.KeepAlive(m)
}

// ToDevice moves every parameter and buffer; the handles from Parameters stay valid (moved in place).
func (m *Module) ToDevice(dev Device) {
	check(C.st_module_to(m.handle("to"), -1, C.int(dev.Type), C.int(dev.Index)), "to")
	runtime.KeepAlive(m)
}

// ChannelsLast stores 4-D weights in channels-last order (faster convolutions on CUDA).
func (m *Module) ChannelsLast() {
	check(C.st_module_channels_last(m.handle("channels_last")), "channels_last")
	runtime.KeepAlive(m)
}

// Named is a named parameter or buffer.
type Named struct {
	Name   string
	Tensor *Tensor
}

// Parameters returns the trainable tensors, named as in torchvision, in registration order. The
// tensors share storage with the module and live outside any scope.
func (m *Module) Parameters() []Named { return m.named(0) }

// Buffers returns the non-trainable state (BatchNorm running statistics).
func (m *Module) Buffers() []Named { return m.named(1) }

func (m *Module) named(kind C.int) []Named {
	h := m.handle("parameters")
	n := int(C.st_module_count(h, kind))
	out := make([]Named, n)
	for i := range out {
		var name *C.char
		var t C.st_tensor
		check(C.st_module_get(h, kind, C.int(i), &name, &t), "parameters")
		out[i].Name = C.GoString(name)
		C.st_free_err(name)
		out[i].Tensor = wrap(t)
		Persist(out[i].Tensor)
	}
	runtime.KeepAlive(m)
	return out
}
