package torch

// #include "spreadtorch.h"
import "C"

import "runtime"

// SetRequiresGrad makes autograd record operations on t (a leaf) and returns t.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	check(C.st_set_requires_grad(t.handle("requires_grad_"), cbool(on)), "requires_grad_")
	runtime.KeepAlive(t)
	return t
}

// Backward accumulates d(t)/d(leaf) into every leaf's Grad; t must be a scalar.
func (t *Tensor) Backward() {
	check(C.st_backward(t.handle("backward"), nil, 0), "backward")
	runtime.KeepAlive(t)
}

// BackwardWith runs backward with an explicit output gradient (for non-scalar t).
func (t *Tensor) BackwardWith(grad *Tensor, retainGraph bool) {
	var g C.st_tensor
	if grad != nil {
		g = grad.handle("backward")
	}
	check(C.st_backward(t.handle("backward"), g, cbool(retainGraph)), "backward")
	runtime.KeepAlive(t)
	runtime.KeepAlive(grad)
}

// Grad returns the accumulated gradient, or nil when there is none.
func (t *Tensor) Grad() *Tensor {
	var out C.st_tensor
	check(C.st_grad(t.handle("grad"), &out), "grad")
	runtime.KeepAlive(t)
	return wrap(out)
}

// ZeroGrad drops the accumulated gradient (PyTorch's set_to_none).
func (t *Tensor) ZeroGrad() {
	check(C.st_zero_grad(t.handle("zero_grad")), "zero_grad")
	runtime.KeepAlive(t)
}

// Grads computes d(sum of outputs)/d(inputs) without touching .Grad (torch.autograd.grad with
// allow_unused); an input the outputs do not depend on gets nil.
func Grads(outputs, inputs []*Tensor, createGraph bool) []*Tensor {
	oh := handles("autograd_grad", outputs)
	ih := handles("autograd_grad", inputs)
	out := make([]C.st_tensor, len(inputs))
	check(C.st_autograd_grad(handlesPtr(oh), nil, C.int(len(oh)), handlesPtr(ih), C.int(len(ih)), cbool(createGraph),
		handlesPtr(out)), "autograd_grad")
	runtime.KeepAlive(outputs)
	runtime.KeepAlive(inputs)
	res := make([]*Tensor, len(out))
	for i, h := range out {
		res[i] = wrap(h)
	}
	return res
}

// NoGrad runs f with autograd recording off. libtorch keeps this mode per OS thread, so the
// goroutine is pinned to its thread while f runs.
func NoGrad(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.st_is_grad_enabled()
	C.st_set_grad_enabled(0)
	defer C.st_set_grad_enabled(prev)
	f()
}

// Autocast runs f with automatic mixed precision for dev's tensors: matrix products and
// convolutions run in dtype (BFloat16 or Float16), precision-sensitive ops stay in float32, as in
// torch.autocast. Parameters and their gradients keep their dtype. libtorch keeps the mode per OS
// thread, so the goroutine is pinned to its thread while f runs.
func Autocast(dev Device, dtype DType, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var prevOn, prevDType C.int
	check(C.st_autocast_push(C.int(dev.Type), C.int(dtype), &prevOn, &prevDType), "autocast")
	defer func() { check(C.st_autocast_pop(C.int(dev.Type), prevOn, prevDType), "autocast") }()
	f()
}

// GradEnabled reports whether autograd records operations on this thread.
func GradEnabled() bool { return C.st_is_grad_enabled() != 0 }

// AdamWUpdate applies torch.optim.AdamW's update to one parameter in place (step is 1-based).
func AdamWUpdate(param, grad, expAvg, expAvgSq *Tensor, lr, beta1, beta2, eps, weightDecay float64, step int64) {
	check(C.st_adamw_update(param.handle("adamw"), grad.handle("adamw"), expAvg.handle("adamw"), expAvgSq.handle("adamw"),
		C.double(lr), C.double(beta1), C.double(beta2), C.double(eps), C.double(weightDecay), C.int64_t(step)), "adamw")
	runtime.KeepAlive(param)
	runtime.KeepAlive(grad)
	runtime.KeepAlive(expAvg)
	runtime.KeepAlive(expAvgSq)
}

// AdamWForeach applies AdamWUpdate to every parameter at once with libtorch's multi-tensor kernels
// (torch.optim.AdamW with foreach=True): the four lists are aligned and share one step count.
func AdamWForeach(params, grads, expAvgs, expAvgSqs []*Tensor, lr, beta1, beta2, eps, weightDecay float64, step int64) {
	n := len(params)
	if len(grads) != n || len(expAvgs) != n || len(expAvgSqs) != n {
		panic(&Error{Op: "adamw_foreach", Msg: "the parameter, gradient and state lists differ in length"})
	}
	if n == 0 {
		return
	}
	p, g := handles("adamw_foreach", params), handles("adamw_foreach", grads)
	m, v := handles("adamw_foreach", expAvgs), handles("adamw_foreach", expAvgSqs)
	check(C.st_adamw_foreach(handlesPtr(p), handlesPtr(g), handlesPtr(m), handlesPtr(v), C.int(n), C.double(lr),
		C.double(beta1), C.double(beta2), C.double(eps), C.double(weightDecay), C.int64_t(step)), "adamw_foreach")
	runtime.KeepAlive(params)
	runtime.KeepAlive(grads)
	runtime.KeepAlive(expAvgs)
	runtime.KeepAlive(expAvgSqs)
}

// SGDUpdate applies torch.optim.SGD's update to one parameter in place; buf is its momentum buffer.
func SGDUpdate(param, grad, buf *Tensor, lr, momentum, dampening, weightDecay float64, nesterov, first bool) {
	check(C.st_sgd_update(param.handle("sgd"), grad.handle("sgd"), buf.handle("sgd"), C.double(lr), C.double(momentum),
		C.double(dampening), C.double(weightDecay), cbool(nesterov), cbool(first)), "sgd")
	runtime.KeepAlive(param)
	runtime.KeepAlive(grad)
	runtime.KeepAlive(buf)
}

// TotalNorm is the joint 2-norm of a list of tensors.
func TotalNorm(ts []*Tensor) *Tensor {
	hs := handles("total_norm", ts)
	var out C.st_tensor
	check(C.st_total_norm(handlesPtr(hs), C.int(len(hs)), &out), "total_norm")
	runtime.KeepAlive(ts)
	return wrap(out)
}
