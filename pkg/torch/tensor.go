package torch

// #include "spreadtorch.h"
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Tensor is a handle to a libtorch tensor. Its memory is released by its Scope, by Free, or (for
// tensors outside any scope) by the GC.
type Tensor struct {
	h     C.st_tensor
	scope *Scope
	slot  int // index in scope.tensors
}

var liveTensors atomic.Int64

// LiveTensors is the number of tensor handles not yet freed (for leak tests).
func LiveTensors() int64 { return liveTensors.Load() }

// Scope owns the tensors created while it is the innermost open scope. Scopes are process-wide and
// nest like a stack: use them from one goroutine at a time (the training loop), closing in reverse
// order of opening.
type Scope struct {
	parent  *Scope
	tensors []*Tensor
	closed  bool
}

var (
	scopeMu sync.Mutex
	current *Scope
)

// NewScope opens a scope nested in the current one.
func NewScope() *Scope {
	scopeMu.Lock()
	defer scopeMu.Unlock()
	s := &Scope{parent: current}
	current = s
	return s
}

// WithScope runs f inside a new scope and closes it, also when f panics.
func WithScope(f func()) {
	s := NewScope()
	defer s.Close()
	f()
}

// WithScopeErr runs f inside a new scope and closes it; it returns f's error, or the *Error a tensor
// op panicked with (other panics pass through), so a step can return I/O and collective errors as
// values while its tensor math stays free of error checks.
func WithScopeErr(f func() error) (err error) {
	if perr := Catch(func() { WithScope(func() { err = f() }) }); perr != nil {
		return perr
	}
	return err
}

// Close frees every tensor the scope still owns and makes its parent current again.
func (s *Scope) Close() {
	scopeMu.Lock()
	if s.closed {
		scopeMu.Unlock()
		return
	}
	s.closed = true
	// An open scope is always on the chain from current; inner scopes left open close with it.
	var inner []*Scope
	for c := current; c != nil && c != s; c = c.parent {
		inner = append(inner, c)
		c.closed = true
	}
	current = s.parent
	scopeMu.Unlock()
	for _, c := range inner {
		c.freeAll()
	}
	s.freeAll()
}

func (s *Scope) freeAll() {
	for _, t := range s.tensors {
		if t != nil {
			t.scope = nil
			t.release()
		}
	}
	s.tensors = nil
}

// Keep moves tensors owned by s into the enclosing scope (or to the GC when s is outermost), so they
// survive s.Close.
func (s *Scope) Keep(ts ...*Tensor) {
	scopeMu.Lock()
	defer scopeMu.Unlock()
	for _, t := range ts {
		if t == nil || t.scope != s {
			continue
		}
		s.tensors[t.slot] = nil
		t.scope = nil
		if s.parent != nil && !s.parent.closed {
			s.parent.add(t)
		} else {
			runtime.SetFinalizer(t, (*Tensor).Free)
		}
	}
}

// Persist takes tensors out of any scope and leaves them to Free or the GC: parameters, optimizer
// state and other long-lived tensors.
func Persist(ts ...*Tensor) {
	scopeMu.Lock()
	defer scopeMu.Unlock()
	for _, t := range ts {
		if t == nil || t.scope == nil {
			continue
		}
		t.scope.tensors[t.slot] = nil
		t.scope = nil
		runtime.SetFinalizer(t, (*Tensor).Free)
	}
}

func (s *Scope) add(t *Tensor) {
	t.scope = s
	t.slot = len(s.tensors)
	s.tensors = append(s.tensors, t)
}

// wrap takes ownership of a new handle from the shim.
func wrap(h C.st_tensor) *Tensor {
	if h == nil {
		return nil
	}
	liveTensors.Add(1)
	t := &Tensor{h: h}
	scopeMu.Lock()
	s := current
	if s != nil {
		s.add(t)
	}
	scopeMu.Unlock()
	if s == nil {
		runtime.SetFinalizer(t, (*Tensor).Free)
	}
	return t
}

// Free releases the tensor now. It is safe to call more than once; a scope that owns the tensor
// forgets it.
func (t *Tensor) Free() {
	if t == nil {
		return
	}
	scopeMu.Lock()
	if t.scope != nil {
		t.scope.tensors[t.slot] = nil
		t.scope = nil
	}
	scopeMu.Unlock()
	t.release()
}

func (t *Tensor) release() {
	if t.h != nil {
		C.st_tensor_free(t.h)
		t.h = nil
		liveTensors.Add(-1)
	}
}

func (t *Tensor) handle(op string) C.st_tensor {
	if t == nil {
		fail(op, "nil tensor")
	}
	if t.h == nil {
		fail(op, "use of a freed tensor")
	}
	return t.h
}

// Defined reports whether t is a live tensor.
func (t *Tensor) Defined() bool { return t != nil && t.h != nil }

// Element is a Go type that maps to a tensor dtype.
type Element interface {
	float32 | float64 | int64 | int32 | uint8 | bool
}

func dtypeOf[T Element]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case int64:
		return Int64
	case int32:
		return Int32
	case uint8:
		return Uint8
	case bool:
		return Bool
	}
	panic("unreachable")
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, s := range shape {
		n *= s
	}
	return n
}

// FromSlice copies data into a new CPU tensor of the given shape (a 1-D tensor when shape is empty).
func FromSlice[T Element](data []T, shape ...int64) *Tensor {
	if len(shape) == 0 {
		shape = []int64{int64(len(data))}
	}
	if n := numel(shape); n != int64(len(data)) {
		fail("from_slice", "shape %v holds %d elements, data has %d", shape, n, len(data))
	}
	var ptr unsafe.Pointer
	var dummy T
	if len(data) > 0 {
		ptr = unsafe.Pointer(&data[0])
	} else {
		ptr = unsafe.Pointer(&dummy)
	}
	var out C.st_tensor
	check(C.st_from_data(ptr, C.int(dtypeOf[T]()), shapePtr(shape), C.int(len(shape)), C.ST_CPU, 0, &out), "from_slice")
	runtime.KeepAlive(data)
	return wrap(out)
}

// Scalar makes a 0-dimensional float tensor.
func Scalar(v float64, dtype DType) *Tensor {
	return Full(nil, v, dtype, CPU)
}

func shapePtr(shape []int64) *C.int64_t {
	if len(shape) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&shape[0]))
}

// ToSlice copies the tensor's elements (in row-major order) into a new Go slice; T must match the
// tensor's dtype.
func ToSlice[T Element](t *Tensor) []T {
	if want := dtypeOf[T](); t.DType() != want {
		fail("to_slice", "tensor is %v, asked for %v", t.DType(), want)
	}
	out := make([]T, t.Numel())
	var z T
	nbytes := int64(len(out)) * int64(unsafe.Sizeof(z))
	ptr := unsafe.Pointer(&z)
	if len(out) > 0 {
		ptr = unsafe.Pointer(&out[0])
	}
	check(C.st_to_data(t.handle("to_slice"), ptr, C.int64_t(nbytes)), "to_slice")
	runtime.KeepAlive(t)
	return out
}

// Float64s returns the elements converted to float64.
func (t *Tensor) Float64s() []float64 {
	var out []float64
	WithScope(func() { out = ToSlice[float64](t.To(Float64)) })
	return out
}

// Float32s returns the elements converted to float32.
func (t *Tensor) Float32s() []float32 {
	var out []float32
	WithScope(func() { out = ToSlice[float32](t.To(Float32)) })
	return out
}

// Int64s returns the elements converted to int64.
func (t *Tensor) Int64s() []int64 {
	var out []int64
	WithScope(func() { out = ToSlice[int64](t.To(Int64)) })
	return out
}

// Bytes copies the raw element bytes (little-endian, row-major) out of the tensor.
func (t *Tensor) Bytes() []byte {
	out := make([]byte, t.Numel()*int64(t.DType().Size()))
	var z byte
	ptr := unsafe.Pointer(&z)
	if len(out) > 0 {
		ptr = unsafe.Pointer(&out[0])
	}
	check(C.st_to_data(t.handle("bytes"), ptr, C.int64_t(len(out))), "bytes")
	runtime.KeepAlive(t)
	return out
}

// FromBytes makes a CPU tensor from raw little-endian element bytes.
func FromBytes(data []byte, dtype DType, shape ...int64) *Tensor {
	if want := numel(shape) * int64(dtype.Size()); want != int64(len(data)) {
		fail("from_bytes", "shape %v of %v needs %d bytes, got %d", shape, dtype, want, len(data))
	}
	var z byte
	ptr := unsafe.Pointer(&z)
	if len(data) > 0 {
		ptr = unsafe.Pointer(&data[0])
	}
	var out C.st_tensor
	check(C.st_from_data(ptr, C.int(dtype), shapePtr(shape), C.int(len(shape)), C.ST_CPU, 0, &out), "from_bytes")
	runtime.KeepAlive(data)
	return wrap(out)
}

// Item returns the value of a one-element tensor as float64.
func (t *Tensor) Item() float64 {
	var v C.double
	check(C.st_item_double(t.handle("item"), &v), "item")
	runtime.KeepAlive(t)
	return float64(v)
}

// ItemInt returns the value of a one-element tensor as int64.
func (t *Tensor) ItemInt() int64 {
	var v C.int64_t
	check(C.st_item_int64(t.handle("item"), &v), "item")
	runtime.KeepAlive(t)
	return int64(v)
}

// Dim is the number of dimensions.
func (t *Tensor) Dim() int {
	n := int(C.st_ndim(t.handle("dim")))
	runtime.KeepAlive(t)
	return n
}

// Shape is the size of each dimension.
func (t *Tensor) Shape() []int64 {
	h := t.handle("shape")
	n := int(C.st_ndim(h))
	s := make([]int64, n)
	if n > 0 {
		C.st_shape(h, (*C.int64_t)(unsafe.Pointer(&s[0])))
	}
	runtime.KeepAlive(t)
	return s
}

// Size is the size of dimension d (negative d counts from the end).
func (t *Tensor) Size(d int) int64 {
	s := t.Shape()
	if d < 0 {
		d += len(s)
	}
	if d < 0 || d >= len(s) {
		fail("size", "dimension %d out of range for shape %v", d, s)
	}
	return s[d]
}

// Numel is the number of elements.
func (t *Tensor) Numel() int64 { return numel(t.Shape()) }

// DType is the element type.
func (t *Tensor) DType() DType {
	d := DType(C.st_dtype(t.handle("dtype")))
	runtime.KeepAlive(t)
	return d
}

// Device is where the tensor lives.
func (t *Tensor) Device() Device {
	var typ, idx C.int
	C.st_device(t.handle("device"), &typ, &idx)
	runtime.KeepAlive(t)
	return Device{Type: DeviceType(typ), Index: int(idx)}
}

// RequiresGrad reports whether autograd records operations on t.
func (t *Tensor) RequiresGrad() bool {
	on := C.st_requires_grad(t.handle("requires_grad")) != 0
	runtime.KeepAlive(t)
	return on
}

// IsContiguous reports whether t is laid out row-major without gaps.
func (t *Tensor) IsContiguous() bool {
	on := C.st_is_contiguous(t.handle("is_contiguous")) != 0
	runtime.KeepAlive(t)
	return on
}

// IsChannelsLast reports whether t is a 4-D tensor laid out channels-last.
func (t *Tensor) IsChannelsLast() bool {
	on := C.st_is_channels_last(t.handle("is_channels_last")) != 0
	runtime.KeepAlive(t)
	return on
}

func (t *Tensor) String() string {
	if !t.Defined() {
		return "Tensor(freed)"
	}
	return fmt.Sprintf("Tensor(%v %v %v)", t.Shape(), t.DType(), t.Device())
}
