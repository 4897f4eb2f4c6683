package nn

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Optimizer updates parameters from their gradients. The learning rate is passed to every step so
// that schedules stay outside the optimizer.
type Optimizer interface {
	Step(lr float64)
	ZeroGrad()
	// State returns the optimizer's tensors by name (for checkpoints) and its scalar metadata.
	State() ([]torch.Named, map[string]string)
	// LoadState restores what State returned; tensors are copied into place.
	LoadState(tensors map[string]*torch.Tensor, meta map[string]string) error
}

// OptimConfig selects and parameterises an optimizer.
type OptimConfig struct {
	Name        string  `yaml:"name"` // adamw or sgd
	LR          float64 `yaml:"lr"`
	WeightDecay float64 `yaml:"weight_decay"`
	Beta1       float64 `yaml:"beta1"`
	Beta2       float64 `yaml:"beta2"`
	Eps         float64 `yaml:"eps"`
	Momentum    float64 `yaml:"momentum"`
	Nesterov    bool    `yaml:"nesterov"`
	ClipNorm    float64 `yaml:"clip_norm"` // 0 disables gradient-norm clipping
	// Foreach updates all AdamW parameters with libtorch's multi-tensor kernels (a few launches per
	// step instead of several per parameter); the trainer sets it from speed.foreach.
	Foreach bool `yaml:"-"`
}

// Validate checks the configuration.
func (c OptimConfig) Validate() error {
	switch c.Name {
	case "adamw":
		if c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1 {
			return fmt.Errorf("optimizer betas (%v, %v): each must be in [0, 1)", c.Beta1, c.Beta2)
		}
		if !(c.Eps > 0) {
			return fmt.Errorf("optimizer.eps %v: must be positive", c.Eps)
		}
	case "sgd":
		if c.Momentum < 0 || c.Momentum >= 1 {
			return fmt.Errorf("optimizer.momentum %v: must be in [0, 1)", c.Momentum)
		}
		if c.Nesterov && c.Momentum == 0 {
			return fmt.Errorf("optimizer.nesterov needs momentum > 0")
		}
	default:
		return fmt.Errorf("optimizer.name %q: want adamw or sgd", c.Name)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		return fmt.Errorf("optimizer.lr %v: must be a positive number", c.LR)
	}
	if c.WeightDecay < 0 {
		return fmt.Errorf("optimizer.weight_decay %v: must be >= 0", c.WeightDecay)
	}
	if c.ClipNorm < 0 {
		return fmt.Errorf("optimizer.clip_norm %v: must be >= 0", c.ClipNorm)
	}
	return nil
}

// NewOptimizer builds the optimizer the configuration names over params.
func NewOptimizer(c OptimConfig, params []torch.Named) (Optimizer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Name == "sgd" {
		return &SGD{Params: params, Momentum: c.Momentum, Nesterov: c.Nesterov, WeightDecay: c.WeightDecay}, nil
	}
	return &AdamW{Params: params, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay, Foreach: c.Foreach}, nil
}

// AdamW is torch.optim.AdamW (decoupled weight decay, bias-corrected moments).
type AdamW struct {
	Params            []torch.Named
	Beta1, Beta2, Eps float64
	WeightDecay       float64
	Foreach           bool // one multi-tensor update for all parameters (torch.optim's foreach=True)
	step              int64
	expAvg, expAvgSq  map[string]*torch.Tensor
}

func (o *AdamW) Step(lr float64) {
	if o.expAvg == nil {
		o.expAvg, o.expAvgSq = map[string]*torch.Tensor{}, map[string]*torch.Tensor{}
	}
	o.step++
	torch.WithScope(func() {
		var ps, gs, ms, vs []*torch.Tensor
		for _, p := range o.Params {
			g := p.Tensor.Grad()
			if g == nil {
				continue
			}
			m, v := o.expAvg[p.Name], o.expAvgSq[p.Name]
			if m == nil {
				m, v = zerosLike(p.Tensor), zerosLike(p.Tensor)
				o.expAvg[p.Name], o.expAvgSq[p.Name] = m, v
			}
			if o.Foreach {
				ps, gs, ms, vs = append(ps, p.Tensor), append(gs, g), append(ms, m), append(vs, v)
				continue
			}
			torch.AdamWUpdate(p.Tensor, g, m, v, lr, o.Beta1, o.Beta2, o.Eps, o.WeightDecay, o.step)
		}
		if o.Foreach {
			torch.AdamWForeach(ps, gs, ms, vs, lr, o.Beta1, o.Beta2, o.Eps, o.WeightDecay, o.step)
		}
	})
}

func (o *AdamW) ZeroGrad() { zeroGrads(o.Params) }

func (o *AdamW) State() ([]torch.Named, map[string]string) {
	var ts []torch.Named
	for _, p := range o.Params {
		if m := o.expAvg[p.Name]; m != nil {
			ts = append(ts, torch.Named{Name: p.Name + ".exp_avg", Tensor: m},
				torch.Named{Name: p.Name + ".exp_avg_sq", Tensor: o.expAvgSq[p.Name]})
		}
	}
	return ts, map[string]string{"optimizer": "adamw", "step": strconv.FormatInt(o.step, 10)}
}

func (o *AdamW) LoadState(tensors map[string]*torch.Tensor, meta map[string]string) error {
	if meta["optimizer"] != "adamw" {
		return fmt.Errorf("optimizer state is for %q, not adamw", meta["optimizer"])
	}
	step, err := strconv.ParseInt(meta["step"], 10, 64)
	if err != nil {
		return fmt.Errorf("optimizer state: bad step %q", meta["step"])
	}
	o.expAvg, o.expAvgSq = map[string]*torch.Tensor{}, map[string]*torch.Tensor{}
	for _, p := range o.Params {
		m, okM := tensors[p.Name+".exp_avg"]
		v, okV := tensors[p.Name+".exp_avg_sq"]
		if okM != okV {
			return fmt.Errorf("optimizer state for %s is incomplete", p.Name)
		}
		if !okM {
			continue
		}
		var err error
		if o.expAvg[p.Name], err = copyOnto(p, m); err != nil {
			return err
		}
		if o.expAvgSq[p.Name], err = copyOnto(p, v); err != nil {
			return err
		}
	}
	o.step = step
	return nil
}

// SGD is torch.optim.SGD (momentum, dampening 0, Nesterov, L2 weight decay).
type SGD struct {
	Params      []torch.Named
	Momentum    float64
	Nesterov    bool
	WeightDecay float64
	buf         map[string]*torch.Tensor
}

func (o *SGD) Step(lr float64) {
	if o.buf == nil {
		o.buf = map[string]*torch.Tensor{}
	}
	torch.WithScope(func() {
		for _, p := range o.Params {
			g := p.Tensor.Grad()
			if g == nil {
				continue
			}
			b, seen := o.buf[p.Name]
			if !seen && o.Momentum != 0 {
				b = zerosLike(p.Tensor)
				o.buf[p.Name] = b
			}
			if b == nil {
				b = g // unused without momentum
			}
			torch.SGDUpdate(p.Tensor, g, b, lr, o.Momentum, 0, o.WeightDecay, o.Nesterov, !seen)
		}
	})
}

func (o *SGD) ZeroGrad() { zeroGrads(o.Params) }

func (o *SGD) State() ([]torch.Named, map[string]string) {
	var ts []torch.Named
	for _, p := range o.Params {
		if b := o.buf[p.Name]; b != nil {
			ts = append(ts, torch.Named{Name: p.Name + ".momentum_buffer", Tensor: b})
		}
	}
	return ts, map[string]string{"optimizer": "sgd"}
}

func (o *SGD) LoadState(tensors map[string]*torch.Tensor, meta map[string]string) error {
	if meta["optimizer"] != "sgd" {
		return fmt.Errorf("optimizer state is for %q, not sgd", meta["optimizer"])
	}
	o.buf = map[string]*torch.Tensor{}
	for _, p := range o.Params {
		if b, ok := tensors[p.Name+".momentum_buffer"]; ok {
			var err error
			if o.buf[p.Name], err = copyOnto(p, b); err != nil {
				return err
			}
		}
	}
	return nil
}

func zerosLike(t *torch.Tensor) *torch.Tensor {
	z := torch.Zeros(t.Shape(), t.DType(), t.Device())
	torch.Persist(z)
	return z
}

// copyOnto makes a persistent copy of a saved state tensor on the parameter's device and dtype.
func copyOnto(p torch.Named, saved *torch.Tensor) (*torch.Tensor, error) {
	if !slices.Equal(p.Tensor.Shape(), saved.Shape()) {
		return nil, fmt.Errorf("optimizer state for %s has shape %v, parameter has %v", p.Name, saved.Shape(), p.Tensor.Shape())
	}
	z := zerosLike(p.Tensor)
	torch.NoGrad(func() { torch.WithScope(func() { z.CopyFrom(saved) }) })
	return z, nil
}

func zeroGrads(params []torch.Named) {
	for _, p := range params {
		p.Tensor.ZeroGrad()
	}
}

// ClipGradNorm scales all gradients so that their joint 2-norm is at most maxNorm, as
// torch.nn.utils.clip_grad_norm_; it returns the norm before clipping.
func ClipGradNorm(params []torch.Named, maxNorm float64) float64 {
	var norm float64
	torch.WithScope(func() {
		var grads []*torch.Tensor
		for _, p := range params {
			if g := p.Tensor.Grad(); g != nil {
				grads = append(grads, g)
			}
		}
		norm = torch.TotalNorm(grads).Item()
		coef := maxNorm / (norm + 1e-6)
		if coef < 1 {
			torch.NoGrad(func() {
				for _, g := range grads {
					g.MulScalarInPlace(coef)
				}
			})
		}
	})
	return norm
}
