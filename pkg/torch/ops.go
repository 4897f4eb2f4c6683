package torch

// #include "spreadtorch.h"
import "C"

import (
	"runtime"
	"unsafe"
)

// ---- factories ----

func factory(kind C.int, op string, shape []int64, fill float64, dtype DType, dev Device) *Tensor {
	var out C.st_tensor
	check(C.st_factory(kind, shapePtr(shape), C.int(len(shape)), C.double(fill), C.int(dtype), C.int(dev.Type),
		C.int(dev.Index), &out), op)
	return wrap(out)
}

// Zeros is a tensor of zeros.
func Zeros(shape []int64, dtype DType, dev Device) *Tensor {
	return factory(C.ST_ZEROS, "zeros", shape, 0, dtype, dev)
}

// Ones is a tensor of ones.
func Ones(shape []int64, dtype DType, dev Device) *Tensor {
	return factory(C.ST_ONES, "ones", shape, 0, dtype, dev)
}

// Full is a tensor filled with v.
func Full(shape []int64, v float64, dtype DType, dev Device) *Tensor {
	return factory(C.ST_FULL, "full", shape, v, dtype, dev)
}

// Empty is an uninitialised tensor.
func Empty(shape []int64, dtype DType, dev Device) *Tensor {
	return factory(C.ST_EMPTY, "empty", shape, 0, dtype, dev)
}

// Rand draws uniformly from [0, 1) with the device's default generator.
func Rand(shape []int64, dtype DType, dev Device) *Tensor {
	return factory(C.ST_RAND, "rand", shape, 0, dtype, dev)
}

// Randn draws from the standard normal distribution.
func Randn(shape []int64, dtype DType, dev Device) *Tensor {
	return factory(C.ST_RANDN, "randn", shape, 0, dtype, dev)
}

// Arange is [start, start+step, ...) below end.
func Arange(start, end, step float64, dtype DType, dev Device) *Tensor {
	var out C.st_tensor
	check(C.st_arange(C.double(start), C.double(end), C.double(step), C.int(dtype), C.int(dev.Type), C.int(dev.Index), &out), "arange")
	return wrap(out)
}

// Randint draws integers uniformly from [low, high).
func Randint(low, high int64, shape []int64, dtype DType, dev Device) *Tensor {
	var out C.st_tensor
	check(C.st_randint(C.int64_t(low), C.int64_t(high), shapePtr(shape), C.int(len(shape)), C.int(dtype), C.int(dev.Type),
		C.int(dev.Index), &out), "randint")
	return wrap(out)
}

// Randperm is a random permutation of 0..n-1 (int64).
func Randperm(n int64, dev Device) *Tensor {
	var out C.st_tensor
	check(C.st_randperm(C.int64_t(n), C.int(dev.Type), C.int(dev.Index), &out), "randperm")
	return wrap(out)
}

// Eye is the n x n identity.
func Eye(n int64, dtype DType, dev Device) *Tensor {
	var out C.st_tensor
	check(C.st_eye(C.int64_t(n), C.int(dtype), C.int(dev.Type), C.int(dev.Index), &out), "eye")
	return wrap(out)
}

// ---- element-wise ----

func unary(op C.int, name string, a *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_unary(op, a.handle(name), &out), name)
	runtime.KeepAlive(a)
	return wrap(out)
}

func (t *Tensor) Neg() *Tensor        { return unary(C.ST_NEG, "neg", t) }
func (t *Tensor) Exp() *Tensor        { return unary(C.ST_EXP, "exp", t) }
func (t *Tensor) Log() *Tensor        { return unary(C.ST_LOG, "log", t) }
func (t *Tensor) Log1p() *Tensor      { return unary(C.ST_LOG1P, "log1p", t) }
func (t *Tensor) Expm1() *Tensor      { return unary(C.ST_EXPM1, "expm1", t) }
func (t *Tensor) Sqrt() *Tensor       { return unary(C.ST_SQRT, "sqrt", t) }
func (t *Tensor) Rsqrt() *Tensor      { return unary(C.ST_RSQRT, "rsqrt", t) }
func (t *Tensor) Abs() *Tensor        { return unary(C.ST_ABS, "abs", t) }
func (t *Tensor) Relu() *Tensor       { return unary(C.ST_RELU, "relu", t) }
func (t *Tensor) Gelu() *Tensor       { return unary(C.ST_GELU, "gelu", t) }
func (t *Tensor) Sigmoid() *Tensor    { return unary(C.ST_SIGMOID, "sigmoid", t) }
func (t *Tensor) Tanh() *Tensor       { return unary(C.ST_TANH, "tanh", t) }
func (t *Tensor) Square() *Tensor     { return unary(C.ST_SQUARE, "square", t) }
func (t *Tensor) Floor() *Tensor      { return unary(C.ST_FLOOR, "floor", t) }
func (t *Tensor) Ceil() *Tensor       { return unary(C.ST_CEIL, "ceil", t) }
func (t *Tensor) Round() *Tensor      { return unary(C.ST_ROUND, "round", t) }
func (t *Tensor) Sign() *Tensor       { return unary(C.ST_SIGN, "sign", t) }
func (t *Tensor) Sin() *Tensor        { return unary(C.ST_SIN, "sin", t) }
func (t *Tensor) Cos() *Tensor        { return unary(C.ST_COS, "cos", t) }
func (t *Tensor) IsFinite() *Tensor   { return unary(C.ST_ISFINITE, "isfinite", t) }
func (t *Tensor) IsNaN() *Tensor      { return unary(C.ST_ISNAN, "isnan", t) }
func (t *Tensor) LogicalNot() *Tensor { return unary(C.ST_LOGICAL_NOT, "logical_not", t) }
func (t *Tensor) Reciprocal() *Tensor { return unary(C.ST_RECIPROCAL, "reciprocal", t) }
func (t *Tensor) Contiguous() *Tensor { return unary(C.ST_CONTIGUOUS, "contiguous", t) }
func (t *Tensor) Clone() *Tensor      { return unary(C.ST_CLONE, "clone", t) }

// ChannelsLast is t (4-D) laid out channels-last (NHWC in memory, NCHW in shape): the layout
// cuDNN's fastest convolutions and tensor cores want.
func (t *Tensor) ChannelsLast() *Tensor { return unary(C.ST_CHANNELS_LAST, "channels_last", t) }

// Detach returns a view that autograd does not track.
func (t *Tensor) Detach() *Tensor { return unary(C.ST_DETACH, "detach", t) }

// T transposes a 2-D tensor.
func (t *Tensor) T() *Tensor { return unary(C.ST_T, "t", t) }

func binary(op C.int, name string, a, b *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_binary(op, a.handle(name), b.handle(name), &out), name)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	return wrap(out)
}

func binaryScalar(op C.int, name string, a *Tensor, s float64) *Tensor {
	var out C.st_tensor
	check(C.st_binary_scalar(op, a.handle(name), C.double(s), &out), name)
	runtime.KeepAlive(a)
	return wrap(out)
}

func scalarBinary(op C.int, name string, s float64, a *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_scalar_binary(op, C.double(s), a.handle(name), &out), name)
	runtime.KeepAlive(a)
	return wrap(out)
}

func (t *Tensor) Add(o *Tensor) *Tensor        { return binary(C.ST_ADD, "add", t, o) }
func (t *Tensor) Sub(o *Tensor) *Tensor        { return binary(C.ST_SUB, "sub", t, o) }
func (t *Tensor) Mul(o *Tensor) *Tensor        { return binary(C.ST_MUL, "mul", t, o) }
func (t *Tensor) Div(o *Tensor) *Tensor        { return binary(C.ST_DIV, "div", t, o) }
func (t *Tensor) Pow(o *Tensor) *Tensor        { return binary(C.ST_POW, "pow", t, o) }
func (t *Tensor) Maximum(o *Tensor) *Tensor    { return binary(C.ST_MAXIMUM, "maximum", t, o) }
func (t *Tensor) Minimum(o *Tensor) *Tensor    { return binary(C.ST_MINIMUM, "minimum", t, o) }
func (t *Tensor) Eq(o *Tensor) *Tensor         { return binary(C.ST_EQ, "eq", t, o) }
func (t *Tensor) Ne(o *Tensor) *Tensor         { return binary(C.ST_NE, "ne", t, o) }
func (t *Tensor) Lt(o *Tensor) *Tensor         { return binary(C.ST_LT, "lt", t, o) }
func (t *Tensor) Le(o *Tensor) *Tensor         { return binary(C.ST_LE, "le", t, o) }
func (t *Tensor) Gt(o *Tensor) *Tensor         { return binary(C.ST_GT, "gt", t, o) }
func (t *Tensor) Ge(o *Tensor) *Tensor         { return binary(C.ST_GE, "ge", t, o) }
func (t *Tensor) LogicalAnd(o *Tensor) *Tensor { return binary(C.ST_LOGICAL_AND, "logical_and", t, o) }
func (t *Tensor) LogicalOr(o *Tensor) *Tensor  { return binary(C.ST_LOGICAL_OR, "logical_or", t, o) }
func (t *Tensor) Fmod(o *Tensor) *Tensor       { return binary(C.ST_FMOD, "fmod", t, o) }
func (t *Tensor) Atan2(o *Tensor) *Tensor      { return binary(C.ST_ATAN2, "atan2", t, o) }

// Matmul is torch.matmul (broadcasting batched matrix product).
func (t *Tensor) Matmul(o *Tensor) *Tensor { return binary(C.ST_MATMUL, "matmul", t, o) }

// MM is a 2-D matrix product.
func (t *Tensor) MM(o *Tensor) *Tensor { return binary(C.ST_MM, "mm", t, o) }

// BMM is a batched 3-D matrix product.
func (t *Tensor) BMM(o *Tensor) *Tensor { return binary(C.ST_BMM, "bmm", t, o) }

func (t *Tensor) AddScalar(s float64) *Tensor { return binaryScalar(C.ST_ADD, "add", t, s) }
func (t *Tensor) SubScalar(s float64) *Tensor { return binaryScalar(C.ST_SUB, "sub", t, s) }
func (t *Tensor) MulScalar(s float64) *Tensor { return binaryScalar(C.ST_MUL, "mul", t, s) }
func (t *Tensor) DivScalar(s float64) *Tensor { return binaryScalar(C.ST_DIV, "div", t, s) }
func (t *Tensor) PowScalar(s float64) *Tensor { return binaryScalar(C.ST_POW, "pow", t, s) }
func (t *Tensor) EqScalar(s float64) *Tensor  { return binaryScalar(C.ST_EQ, "eq", t, s) }
func (t *Tensor) NeScalar(s float64) *Tensor  { return binaryScalar(C.ST_NE, "ne", t, s) }
func (t *Tensor) LtScalar(s float64) *Tensor  { return binaryScalar(C.ST_LT, "lt", t, s) }
func (t *Tensor) LeScalar(s float64) *Tensor  { return binaryScalar(C.ST_LE, "le", t, s) }
func (t *Tensor) GtScalar(s float64) *Tensor  { return binaryScalar(C.ST_GT, "gt", t, s) }
func (t *Tensor) GeScalar(s float64) *Tensor  { return binaryScalar(C.ST_GE, "ge", t, s) }

// RSub is s - t.
func (t *Tensor) RSub(s float64) *Tensor { return scalarBinary(C.ST_SUB, "rsub", s, t) }

// RDiv is s / t.
func (t *Tensor) RDiv(s float64) *Tensor { return scalarBinary(C.ST_DIV, "rdiv", s, t) }

// Clamp limits values to [lo, hi]; use ClampMin/ClampMax for one side.
func (t *Tensor) Clamp(lo, hi float64) *Tensor { return clamp(t, lo, hi, true, true) }
func (t *Tensor) ClampMin(lo float64) *Tensor  { return clamp(t, lo, 0, true, false) }
func (t *Tensor) ClampMax(hi float64) *Tensor  { return clamp(t, 0, hi, false, true) }

func clamp(t *Tensor, lo, hi float64, hasLo, hasHi bool) *Tensor {
	var out C.st_tensor
	check(C.st_clamp(t.handle("clamp"), C.double(lo), C.double(hi), cbool(hasLo), cbool(hasHi), &out), "clamp")
	runtime.KeepAlive(t)
	return wrap(out)
}

// Where picks a where cond is true, else b.
func Where(cond, a, b *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_where(cond.handle("where"), a.handle("where"), b.handle("where"), &out), "where")
	runtime.KeepAlive(cond)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	return wrap(out)
}

// MaskedFill sets the elements where mask is true to v.
func (t *Tensor) MaskedFill(mask *Tensor, v float64) *Tensor {
	var out C.st_tensor
	check(C.st_masked_fill(t.handle("masked_fill"), mask.handle("masked_fill"), C.double(v), &out), "masked_fill")
	runtime.KeepAlive(t)
	runtime.KeepAlive(mask)
	return wrap(out)
}

// To converts the dtype, keeping the device.
func (t *Tensor) To(dtype DType) *Tensor { return t.ToDevice(t.Device(), dtype) }

// ToDevice moves and converts.
func (t *Tensor) ToDevice(dev Device, dtype DType) *Tensor {
	var out C.st_tensor
	check(C.st_to(t.handle("to"), C.int(dtype), C.int(dev.Type), C.int(dev.Index), 0, &out), "to")
	runtime.KeepAlive(t)
	return wrap(out)
}

// On moves the tensor to dev, keeping its dtype.
func (t *Tensor) On(dev Device) *Tensor { return t.ToDevice(dev, t.DType()) }

// Lerp is t + w*(o - t).
func (t *Tensor) Lerp(o *Tensor, w float64) *Tensor {
	var out C.st_tensor
	check(C.st_lerp(t.handle("lerp"), o.handle("lerp"), C.double(w), &out), "lerp")
	runtime.KeepAlive(t)
	runtime.KeepAlive(o)
	return wrap(out)
}

// ---- in-place ----

func inplace(op C.int, name string, a, b *Tensor) {
	check(C.st_inplace(op, a.handle(name), b.handle(name)), name)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

func inplaceScalar(op C.int, name string, a *Tensor, s float64) {
	check(C.st_inplace_scalar(op, a.handle(name), C.double(s)), name)
	runtime.KeepAlive(a)
}

func (t *Tensor) AddInPlace(o *Tensor)       { inplace(C.ST_IADD, "add_", t, o) }
func (t *Tensor) SubInPlace(o *Tensor)       { inplace(C.ST_ISUB, "sub_", t, o) }
func (t *Tensor) MulInPlace(o *Tensor)       { inplace(C.ST_IMUL, "mul_", t, o) }
func (t *Tensor) DivInPlace(o *Tensor)       { inplace(C.ST_IDIV, "div_", t, o) }
func (t *Tensor) CopyFrom(o *Tensor)         { inplace(C.ST_ICOPY, "copy_", t, o) }
func (t *Tensor) AddScalarInPlace(s float64) { inplaceScalar(C.ST_IADD, "add_", t, s) }
func (t *Tensor) MulScalarInPlace(s float64) { inplaceScalar(C.ST_IMUL, "mul_", t, s) }
func (t *Tensor) Fill(s float64)             { inplaceScalar(C.ST_ICOPY, "fill_", t, s) }
func (t *Tensor) Zero() {
	check(C.st_zero_(t.handle("zero_")), "zero_")
	runtime.KeepAlive(t)
}

// ---- reductions ----

func reduce(op C.int, name string, t *Tensor, dims []int64, keepdim bool) *Tensor {
	var out C.st_tensor
	check(C.st_reduce(op, t.handle(name), shapePtr(dims), C.int(len(dims)), cbool(keepdim), &out), name)
	runtime.KeepAlive(t)
	return wrap(out)
}

// Sum over all elements.
func (t *Tensor) Sum() *Tensor { return reduce(C.ST_SUM, "sum", t, nil, false) }

// SumDims over the given dimensions.
func (t *Tensor) SumDims(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_SUM, "sum", t, nonEmpty("sum", dims), keepdim)
}

// Mean over all elements.
func (t *Tensor) Mean() *Tensor { return reduce(C.ST_MEAN, "mean", t, nil, false) }

// MeanDims over the given dimensions.
func (t *Tensor) MeanDims(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_MEAN, "mean", t, nonEmpty("mean", dims), keepdim)
}

// Max over all elements.
func (t *Tensor) Max() *Tensor { return reduce(C.ST_AMAX, "amax", t, nil, false) }

// Min over all elements.
func (t *Tensor) Min() *Tensor { return reduce(C.ST_AMIN, "amin", t, nil, false) }

// AMax is the maximum over the given dimensions.
func (t *Tensor) AMax(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_AMAX, "amax", t, nonEmpty("amax", dims), keepdim)
}

// AMin is the minimum over the given dimensions.
func (t *Tensor) AMin(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_AMIN, "amin", t, nonEmpty("amin", dims), keepdim)
}

// LogSumExp over the given dimensions, computed stably (max subtraction).
func (t *Tensor) LogSumExp(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_LOGSUMEXP, "logsumexp", t, nonEmpty("logsumexp", dims), keepdim)
}

// Prod over the given dimensions (all when none).
func (t *Tensor) Prod(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_PROD, "prod", t, dims, keepdim)
}

// All reports whether every element is true (over dims, or all).
func (t *Tensor) All(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_ALL, "all", t, dims, keepdim)
}

// Any reports whether some element is true (over dims, or all).
func (t *Tensor) Any(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_ANY, "any", t, dims, keepdim)
}

// Var is the unbiased variance over dims (all when none).
func (t *Tensor) Var(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_VAR, "var", t, dims, keepdim)
}

// Std is the unbiased standard deviation over dims (all when none).
func (t *Tensor) Std(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_STD, "std", t, dims, keepdim)
}

// Norm is the 2-norm over dims (all when none).
func (t *Tensor) Norm(keepdim bool, dims ...int64) *Tensor {
	return reduce(C.ST_NORM2, "norm", t, dims, keepdim)
}

func nonEmpty(op string, dims []int64) []int64 {
	if len(dims) == 0 {
		fail(op, "name at least one dimension (use the method without Dims to reduce everything)")
	}
	return dims
}

// Argmax along dim.
func (t *Tensor) Argmax(dim int64, keepdim bool) *Tensor {
	var out C.st_tensor
	check(C.st_argreduce(C.ST_ARGMAX, t.handle("argmax"), C.int64_t(dim), cbool(keepdim), &out), "argmax")
	runtime.KeepAlive(t)
	return wrap(out)
}

// Argmin along dim.
func (t *Tensor) Argmin(dim int64, keepdim bool) *Tensor {
	var out C.st_tensor
	check(C.st_argreduce(C.ST_ARGMIN, t.handle("argmin"), C.int64_t(dim), cbool(keepdim), &out), "argmin")
	runtime.KeepAlive(t)
	return wrap(out)
}

// Sort along dim; returns values and int64 indices.
func (t *Tensor) Sort(dim int64, descending bool) (*Tensor, *Tensor) {
	var v, i C.st_tensor
	check(C.st_sort(t.handle("sort"), C.int64_t(dim), cbool(descending), &v, &i), "sort")
	runtime.KeepAlive(t)
	return wrap(v), wrap(i)
}

// TopK returns the k largest (or smallest) values along dim, sorted, and their indices.
func (t *Tensor) TopK(k, dim int64, largest bool) (*Tensor, *Tensor) {
	var v, i C.st_tensor
	check(C.st_topk(t.handle("topk"), C.int64_t(k), C.int64_t(dim), cbool(largest), &v, &i), "topk")
	runtime.KeepAlive(t)
	return wrap(v), wrap(i)
}

// Cumsum along dim.
func (t *Tensor) Cumsum(dim int64) *Tensor {
	var out C.st_tensor
	check(C.st_cumsum(t.handle("cumsum"), C.int64_t(dim), &out), "cumsum")
	runtime.KeepAlive(t)
	return wrap(out)
}

// ---- shape and indexing ----

func shapeOp(name string, t *Tensor, dims []int64,
	f func(C.st_tensor, *C.int64_t, C.int, *C.st_tensor) C.st_err) *Tensor {
	var out C.st_tensor
	check(f(t.handle(name), shapePtr(dims), C.int(len(dims)), &out), name)
	runtime.KeepAlive(t)
	return wrap(out)
}

func (t *Tensor) Reshape(shape ...int64) *Tensor {
	return shapeOp("reshape", t, shape, func(a C.st_tensor, p *C.int64_t, n C.int, o *C.st_tensor) C.st_err {
		return C.st_reshape(a, p, n, o)
	})
}

func (t *Tensor) Permute(dims ...int64) *Tensor {
	return shapeOp("permute", t, dims, func(a C.st_tensor, p *C.int64_t, n C.int, o *C.st_tensor) C.st_err {
		return C.st_permute(a, p, n, o)
	})
}

func (t *Tensor) Expand(shape ...int64) *Tensor {
	return shapeOp("expand", t, shape, func(a C.st_tensor, p *C.int64_t, n C.int, o *C.st_tensor) C.st_err {
		return C.st_expand(a, p, n, o)
	})
}

func (t *Tensor) Repeat(reps ...int64) *Tensor {
	return shapeOp("repeat", t, reps, func(a C.st_tensor, p *C.int64_t, n C.int, o *C.st_tensor) C.st_err {
		return C.st_repeat(a, p, n, o)
	})
}

func (t *Tensor) Flip(dims ...int64) *Tensor {
	return shapeOp("flip", t, dims, func(a C.st_tensor, p *C.int64_t, n C.int, o *C.st_tensor) C.st_err {
		return C.st_flip(a, p, n, o)
	})
}

func (t *Tensor) Transpose(d0, d1 int64) *Tensor {
	var out C.st_tensor
	check(C.st_transpose(t.handle("transpose"), C.int64_t(d0), C.int64_t(d1), &out), "transpose")
	runtime.KeepAlive(t)
	return wrap(out)
}

func (t *Tensor) Unsqueeze(dim int64) *Tensor {
	var out C.st_tensor
	check(C.st_unsqueeze(t.handle("unsqueeze"), C.int64_t(dim), &out), "unsqueeze")
	runtime.KeepAlive(t)
	return wrap(out)
}

func (t *Tensor) Squeeze(dim int64) *Tensor {
	var out C.st_tensor
	check(C.st_squeeze(t.handle("squeeze"), C.int64_t(dim), &out), "squeeze")
	runtime.KeepAlive(t)
	return wrap(out)
}

func (t *Tensor) Flatten(start, end int64) *Tensor {
	var out C.st_tensor
	check(C.st_flatten(t.handle("flatten"), C.int64_t(start), C.int64_t(end), &out), "flatten")
	runtime.KeepAlive(t)
	return wrap(out)
}

// Narrow is the slice [start, start+length) along dim (a view).
func (t *Tensor) Narrow(dim, start, length int64) *Tensor {
	var out C.st_tensor
	check(C.st_narrow(t.handle("narrow"), C.int64_t(dim), C.int64_t(start), C.int64_t(length), &out), "narrow")
	runtime.KeepAlive(t)
	return wrap(out)
}

// Select picks one index along dim, removing that dimension (a view).
func (t *Tensor) Select(dim, index int64) *Tensor {
	var out C.st_tensor
	check(C.st_select(t.handle("select"), C.int64_t(dim), C.int64_t(index), &out), "select")
	runtime.KeepAlive(t)
	return wrap(out)
}

func (t *Tensor) IndexSelect(dim int64, index *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_index_select(t.handle("index_select"), C.int64_t(dim), index.handle("index_select"), &out), "index_select")
	runtime.KeepAlive(t)
	runtime.KeepAlive(index)
	return wrap(out)
}

func (t *Tensor) Gather(dim int64, index *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_gather(t.handle("gather"), C.int64_t(dim), index.handle("gather"), &out), "gather")
	runtime.KeepAlive(t)
	runtime.KeepAlive(index)
	return wrap(out)
}

func (t *Tensor) Scatter(dim int64, index, src *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_scatter(t.handle("scatter"), C.int64_t(dim), index.handle("scatter"), src.handle("scatter"), &out), "scatter")
	runtime.KeepAlive(t)
	runtime.KeepAlive(index)
	runtime.KeepAlive(src)
	return wrap(out)
}

func (t *Tensor) ScatterAdd(dim int64, index, src *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_scatter_add(t.handle("scatter_add"), C.int64_t(dim), index.handle("scatter_add"), src.handle("scatter_add"), &out), "scatter_add")
	runtime.KeepAlive(t)
	runtime.KeepAlive(index)
	runtime.KeepAlive(src)
	return wrap(out)
}

func (t *Tensor) MaskedSelect(mask *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_masked_select(t.handle("masked_select"), mask.handle("masked_select"), &out), "masked_select")
	runtime.KeepAlive(t)
	runtime.KeepAlive(mask)
	return wrap(out)
}

// Nonzero returns the [K, ndim] indices of the non-zero elements.
func (t *Tensor) Nonzero() *Tensor {
	var out C.st_tensor
	check(C.st_nonzero(t.handle("nonzero"), &out), "nonzero")
	runtime.KeepAlive(t)
	return wrap(out)
}

func handles(op string, ts []*Tensor) []C.st_tensor {
	hs := make([]C.st_tensor, len(ts))
	for i, t := range ts {
		hs[i] = t.handle(op)
	}
	return hs
}

// handlesPtr passes a Go slice of C pointers to C: allowed, since the slice holds no Go pointers.
func handlesPtr(hs []C.st_tensor) *C.st_tensor {
	if len(hs) == 0 {
		return nil
	}
	return (*C.st_tensor)(unsafe.Pointer(&hs[0]))
}

// Cat joins tensors along dim.
func Cat(ts []*Tensor, dim int64) *Tensor {
	hs := handles("cat", ts)
	var out C.st_tensor
	check(C.st_cat(handlesPtr(hs), C.int(len(hs)), C.int64_t(dim), &out), "cat")
	runtime.KeepAlive(ts)
	return wrap(out)
}

// Stack joins tensors along a new dimension.
func Stack(ts []*Tensor, dim int64) *Tensor {
	hs := handles("stack", ts)
	var out C.st_tensor
	check(C.st_stack(handlesPtr(hs), C.int(len(hs)), C.int64_t(dim), &out), "stack")
	runtime.KeepAlive(ts)
	return wrap(out)
}

func (t *Tensor) Tril(diagonal int64) *Tensor {
	var out C.st_tensor
	check(C.st_tril(t.handle("tril"), C.int64_t(diagonal), &out), "tril")
	runtime.KeepAlive(t)
	return wrap(out)
}

func (t *Tensor) Triu(diagonal int64) *Tensor {
	var out C.st_tensor
	check(C.st_triu(t.handle("triu"), C.int64_t(diagonal), &out), "triu")
	runtime.KeepAlive(t)
	return wrap(out)
}

// Diagonal of the 2-D slices over dims d0, d1.
func (t *Tensor) Diagonal(offset, d0, d1 int64) *Tensor {
	var out C.st_tensor
	check(C.st_diagonal(t.handle("diagonal"), C.int64_t(offset), C.int64_t(d0), C.int64_t(d1), &out), "diagonal")
	runtime.KeepAlive(t)
	return wrap(out)
}

// DiagEmbed puts the last dimension on the diagonal of new square matrices.
func (t *Tensor) DiagEmbed() *Tensor {
	var out C.st_tensor
	check(C.st_diag_embed(t.handle("diag_embed"), &out), "diag_embed")
	runtime.KeepAlive(t)
	return wrap(out)
}

// OneHot encodes int64 class indices (num < 0 infers the class count).
func (t *Tensor) OneHot(num int64) *Tensor {
	var out C.st_tensor
	check(C.st_one_hot(t.handle("one_hot"), C.int64_t(num), &out), "one_hot")
	runtime.KeepAlive(t)
	return wrap(out)
}

// Bincount counts occurrences of each non-negative int64 value.
func (t *Tensor) Bincount(minlength int64) *Tensor {
	var out C.st_tensor
	check(C.st_bincount(t.handle("bincount"), C.int64_t(minlength), &out), "bincount")
	runtime.KeepAlive(t)
	return wrap(out)
}

// ---- neural-network functions ----

// Normalize divides by the p-norm along dim (at least eps), as F.normalize.
func (t *Tensor) Normalize(p float64, dim int64, eps float64) *Tensor {
	var out C.st_tensor
	check(C.st_normalize(t.handle("normalize"), C.double(p), C.int64_t(dim), C.double(eps), &out), "normalize")
	runtime.KeepAlive(t)
	return wrap(out)
}

func (t *Tensor) Softmax(dim int64) *Tensor {
	var out C.st_tensor
	check(C.st_softmax(t.handle("softmax"), C.int64_t(dim), &out), "softmax")
	runtime.KeepAlive(t)
	return wrap(out)
}

func (t *Tensor) LogSoftmax(dim int64) *Tensor {
	var out C.st_tensor
	check(C.st_log_softmax(t.handle("log_softmax"), C.int64_t(dim), &out), "log_softmax")
	runtime.KeepAlive(t)
	return wrap(out)
}

// Reduction says how a loss combines its elements.
type Reduction int

const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// CrossEntropy of logits [N, C] against int64 targets [N].
func CrossEntropy(logits, targets *Tensor, red Reduction, labelSmoothing float64) *Tensor {
	var out C.st_tensor
	check(C.st_cross_entropy(logits.handle("cross_entropy"), targets.handle("cross_entropy"), C.int(red),
		C.double(labelSmoothing), &out), "cross_entropy")
	runtime.KeepAlive(logits)
	runtime.KeepAlive(targets)
	return wrap(out)
}

// MSELoss between a and b.
func MSELoss(a, b *Tensor, red Reduction) *Tensor {
	var out C.st_tensor
	check(C.st_mse_loss(a.handle("mse_loss"), b.handle("mse_loss"), C.int(red), &out), "mse_loss")
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	return wrap(out)
}

// Linear is x w^T + b (b may be nil).
func Linear(x, w, b *Tensor) *Tensor {
	var bh C.st_tensor
	if b != nil {
		bh = b.handle("linear")
	}
	var out C.st_tensor
	check(C.st_linear(x.handle("linear"), w.handle("linear"), bh, &out), "linear")
	runtime.KeepAlive(x)
	runtime.KeepAlive(w)
	runtime.KeepAlive(b)
	return wrap(out)
}

// InterpMode selects the interpolation kernel.
type InterpMode int

const (
	Nearest  InterpMode = 0
	Bilinear InterpMode = 1
	Bicubic  InterpMode = 2
	Area     InterpMode = 3
)

// Interpolate resizes [N, C, H, W] to [N, C, h, w].
func (t *Tensor) Interpolate(h, w int64, mode InterpMode, alignCorners, antialias bool) *Tensor {
	var out C.st_tensor
	check(C.st_interpolate(t.handle("interpolate"), C.int64_t(h), C.int64_t(w), C.int(mode), cbool(alignCorners),
		cbool(antialias), &out), "interpolate")
	runtime.KeepAlive(t)
	return wrap(out)
}

// GridPadding is grid_sample's out-of-range rule.
type GridPadding int

const (
	PadZeros      GridPadding = 0
	PadBorder     GridPadding = 1
	PadReflection GridPadding = 2
)

// GridSample samples x [N, C, H, W] at grid [N, h, w, 2] (x, y in [-1, 1]); nearest when !bilinear.
func GridSample(x, grid *Tensor, bilinear bool, padding GridPadding, alignCorners bool) *Tensor {
	mode := 1
	if bilinear {
		mode = 0
	}
	var out C.st_tensor
	check(C.st_grid_sample(x.handle("grid_sample"), grid.handle("grid_sample"), C.int(mode), C.int(padding),
		cbool(alignCorners), &out), "grid_sample")
	runtime.KeepAlive(x)
	runtime.KeepAlive(grid)
	return wrap(out)
}

// AffineGrid turns theta [N, 2, 3] into a sampling grid for an output of size [N, C, H, W].
func AffineGrid(theta *Tensor, size []int64, alignCorners bool) *Tensor {
	var out C.st_tensor
	check(C.st_affine_grid(theta.handle("affine_grid"), shapePtr(size), C.int(len(size)), cbool(alignCorners), &out), "affine_grid")
	runtime.KeepAlive(theta)
	return wrap(out)
}

// Embedding looks up rows of weight.
func Embedding(weight, indices *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_embedding(weight.handle("embedding"), indices.handle("embedding"), &out), "embedding")
	runtime.KeepAlive(weight)
	runtime.KeepAlive(indices)
	return wrap(out)
}

// Dropout zeroes elements with probability p when train is true.
func (t *Tensor) Dropout(p float64, train bool) *Tensor {
	var out C.st_tensor
	check(C.st_dropout(t.handle("dropout"), C.double(p), cbool(train), &out), "dropout")
	runtime.KeepAlive(t)
	return wrap(out)
}

// CDist is the pairwise Euclidean distance between the rows of a and b.
func CDist(a, b *Tensor) *Tensor {
	var out C.st_tensor
	check(C.st_cdist(a.handle("cdist"), b.handle("cdist"), &out), "cdist")
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	return wrap(out)
}
