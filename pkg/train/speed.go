package train

import (
	"fmt"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// SpeedConfig is the fast path. Every switch is auto, on or off. auto turns channels-last and the
// multi-tensor AdamW on everywhere (both measured faster on the CPU: bench/README.md) and bf16
// autocast and cuDNN's autotuner on CUDA only (the usual GPU recipe, not yet measured on a GPU here;
// bf16 pays on a CPU only where it has bf16 instructions, so the CPU default stays float32). None
// changes what is computed beyond rounding: bf16 autocast rounds the forward passes' matrix products
// and convolutions; the losses, the weights and the optimizer stay float32.
type SpeedConfig struct {
	AMP            string `yaml:"amp"`             // bf16 autocast of the encoder, head and decoder forward passes
	ChannelsLast   string `yaml:"channels_last"`   // convolution weights and images in channels-last order
	CuDNNBenchmark string `yaml:"cudnn_benchmark"` // cuDNN's autotuner picks each convolution's algorithm
	Foreach        string `yaml:"foreach"`         // one multi-tensor AdamW update for all parameters
	// SupConPath is how the contrastive losses walk the similarities: auto (dense up to
	// supcon.DenseMaxPairs anchor x candidate rows, blockwise above), dense or blockwise (docs/losses.md).
	SupConPath string `yaml:"supcon_path"`
}

// DefaultSpeed leaves every switch to the device.
func DefaultSpeed() SpeedConfig {
	return SpeedConfig{AMP: "auto", ChannelsLast: "auto", CuDNNBenchmark: "auto", Foreach: "auto", SupConPath: "auto"}
}

// FastPath is a SpeedConfig resolved for the device a run trains on.
type FastPath struct {
	Device                                     torch.Device
	AMP, ChannelsLast, CuDNNBenchmark, Foreach bool
	SupConPath                                 supcon.Path
}

func (s SpeedConfig) switches() map[string]string {
	return map[string]string{"amp": s.AMP, "channels_last": s.ChannelsLast, "cudnn_benchmark": s.CuDNNBenchmark,
		"foreach": s.Foreach}
}

// Validate checks that every switch is auto, on or off, and the SupCon path auto, dense or blockwise.
func (s SpeedConfig) Validate() error {
	for name, v := range s.switches() {
		if _, err := resolveSwitch(v, false); err != nil {
			return fmt.Errorf("speed.%s: %w", name, err)
		}
	}
	if _, err := supcon.ParsePath(s.SupConPath); err != nil {
		return fmt.Errorf("speed.supcon_path: %w", err)
	}
	return nil
}

// Resolve turns the switches into decisions for dev.
func (s SpeedConfig) Resolve(dev torch.Device) (FastPath, error) {
	if err := s.Validate(); err != nil {
		return FastPath{}, err
	}
	cuda := dev.Type == torch.CUDADevice
	on := func(v string, auto bool) bool { b, _ := resolveSwitch(v, auto); return b }
	path, _ := supcon.ParsePath(s.SupConPath)
	return FastPath{Device: dev, AMP: on(s.AMP, cuda), ChannelsLast: on(s.ChannelsLast, true),
		CuDNNBenchmark: on(s.CuDNNBenchmark, cuda), Foreach: on(s.Foreach, true), SupConPath: path}, nil
}

func resolveSwitch(v string, auto bool) (bool, error) {
	switch v {
	case "auto":
		return auto, nil
	case "on", "true":
		return true, nil
	case "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q: want auto, on or off", v)
}

// Apply sets the process-wide switches (cuDNN's autotuner) and lays out the model's weights for the
// fast path; call it after the model has moved to its device and before the optimizer is built.
func (fp FastPath) Apply(m *Model) {
	torch.SetCuDNNBenchmark(fp.CuDNNBenchmark)
	if fp.ChannelsLast {
		m.ChannelsLast()
	}
}

// Optim is the optimizer configuration with the fast path's multi-tensor switch.
func (fp FastPath) Optim(c nn.OptimConfig) nn.OptimConfig {
	c.Foreach = fp.Foreach
	return c
}

// forward runs f under bf16 autocast when the fast path asks for it.
func (fp FastPath) forward(f func()) {
	if fp.AMP {
		torch.Autocast(fp.Device, torch.BFloat16, f)
		return
	}
	f()
}

// full returns autocast's bfloat16 outputs in float32: the losses are computed in float32.
func full(t *torch.Tensor) *torch.Tensor {
	if t.DType() == torch.BFloat16 {
		return t.To(torch.Float32)
	}
	return t
}
