// Package torch is spreadtrain's Go binding of libtorch: tensors, ops, autograd and modules over the
// C ABI in cgo/spreadtorch.h (built into libspreadtorch.so by `make shim`).
//
// Memory: libtorch memory (including GPU memory) is invisible to Go's GC, so tensors are freed
// deterministically. Every tensor created while a Scope is open belongs to the innermost open Scope
// and is freed when it closes; Scope.Keep moves results that must live longer to the enclosing scope,
// and Persist hands a tensor to the GC (parameters, optimizer state, datasets). Tensors created with
// no scope open are also left to the GC.
//
// Errors: ops panic with *Error (libtorch's message) so that loss code stays readable; every exported
// entry point of the packages above recovers it with Catch and returns an ordinary error.
package torch

/*
#cgo CFLAGS: -I${SRCDIR}/../../cgo
#cgo LDFLAGS: -L${SRCDIR}/../../build/cgo -lspreadtorch -Wl,-rpath,${SRCDIR}/../../build/cgo -Wl,-rpath,$ORIGIN -Wl,-rpath,$ORIGIN/../lib
#include <stdlib.h>
#include "spreadtorch.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
)

// Error is a libtorch error (or a misuse of this package) carried as a Go value.
type Error struct {
	Op  string // the operation that failed, e.g. "matmul"
	Msg string // libtorch's message
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// check turns a shim error string into a panic with *Error.
func check(err C.st_err, op string) {
	if err == nil {
		return
	}
	msg := C.GoString(err)
	C.st_free_err(err)
	panic(&Error{Op: op, Msg: strings.TrimSpace(msg)})
}

func fail(op, format string, args ...any) {
	panic(&Error{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// Catch runs f and returns the *Error it panicked with, if any; other panics pass through.
func Catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*Error); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

// Version is the libtorch version the shim was built against.
func Version() string { return C.GoString(C.st_torch_version()) }

// CUDAAvailable reports whether a CUDA device can be used.
func CUDAAvailable() bool { return C.st_cuda_available() != 0 }

// CUDADeviceCount is the number of visible CUDA devices.
func CUDADeviceCount() int { return int(C.st_cuda_device_count()) }

// SetNumThreads sets libtorch's intra-op thread count for every thread of the process.
func SetNumThreads(n int) { C.st_set_num_threads(C.int(n)) }

// NumThreads is libtorch's intra-op thread count.
func NumThreads() int { return int(C.st_get_num_threads()) }

// ManualSeed seeds the default generators of every device.
func ManualSeed(seed uint64) { C.st_manual_seed(C.uint64_t(seed)) }

// SetCuDNNBenchmark turns cuDNN's autotuner on or off.
func SetCuDNNBenchmark(on bool) { C.st_set_cudnn_benchmark(cbool(on)) }

// Synchronize waits for the device's queued work (a no-op on CPU).
func Synchronize(d Device) {
	if d.Type == CUDADevice {
		check(C.st_cuda_synchronize(C.int(d.Index)), "synchronize")
	}
}

// HostCopies counts the shim calls so far that moved data between host memory and a tensor: FromSlice
// and other uploads, Item, reads into Go slices, moves between devices (On), NonZero and MaskedSelect
// (their size is read back) and RNG state reads and writes. On a GPU each is a copy the host waits
// for, so a training step should make none outside logging; the count is kept on every device, so
// a CPU test sees the calls a CUDA step would block on.
func HostCopies() uint64 { return uint64(C.st_host_copies()) }

// RNGState returns the state of a device's default generator (to save with a checkpoint).
func RNGState(d Device) *Tensor {
	var out C.st_tensor
	check(C.st_rng_get_state(C.int(d.Type), C.int(d.Index), &out), "rng_get_state")
	return wrap(out)
}

// SetRNGState restores a state returned by RNGState.
func SetRNGState(d Device, state *Tensor) {
	check(C.st_rng_set_state(C.int(d.Type), C.int(d.Index), state.handle("rng_set_state")), "rng_set_state")
	runtime.KeepAlive(state)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// DType is an element type.
type DType int

const (
	Uint8    DType = C.ST_UINT8
	Int8     DType = C.ST_INT8
	Int32    DType = C.ST_INT32
	Int64    DType = C.ST_INT64
	Float16  DType = C.ST_FLOAT16
	BFloat16 DType = C.ST_BFLOAT16
	Float32  DType = C.ST_FLOAT32
	Float64  DType = C.ST_FLOAT64
	Bool     DType = C.ST_BOOL
)

var dtypeNames = map[DType]string{
	Uint8: "uint8", Int8: "int8", Int32: "int32", Int64: "int64", Float16: "float16",
	BFloat16: "bfloat16", Float32: "float32", Float64: "float64", Bool: "bool",
}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// Size is the element size in bytes.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Float16, BFloat16:
		return 2
	case Int32, Float32:
		return 4
	case Int64, Float64:
		return 8
	}
	fail("dtype", "unknown dtype %d", int(d))
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == Float16 || d == BFloat16 || d == Float32 || d == Float64
}

// DeviceType is CPU or CUDA.
type DeviceType int

const (
	CPUDevice  DeviceType = C.ST_CPU
	CUDADevice DeviceType = C.ST_CUDA
)

// Device names a CPU or one CUDA device.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host device.
var CPU = Device{Type: CPUDevice}

// CUDA returns the CUDA device with the given index.
func CUDA(index int) Device { return Device{Type: CUDADevice, Index: index} }

func (d Device) String() string {
	if d.Type == CUDADevice {
		return "cuda:" + strconv.Itoa(d.Index)
	}
	return "cpu"
}

// ErrDeviceUnavailable marks ParseDevice's error for a well-formed device this machine lacks (a GPU
// run's config read on a CPU machine), as opposed to a malformed device string.
var ErrDeviceUnavailable = errors.New("not available here")

// ParseDevice reads "cpu", "cuda", "cuda:N" or "auto" (CUDA when available, else CPU). It is the one
// device parser: configs, flags and checkpoints all go through it.
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "" || s == "auto":
		if CUDAAvailable() {
			return CUDA(0), nil
		}
		return CPU, nil
	case s == "cpu":
		return CPU, nil
	case s == "cuda" || strings.HasPrefix(s, "cuda:"):
		idx := 0
		if rest, ok := strings.CutPrefix(s, "cuda:"); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 {
				return CPU, fmt.Errorf("device %q: the index after cuda: must be a non-negative integer", s)
			}
			idx = n
		}
		if !CUDAAvailable() {
			return CPU, fmt.Errorf("device %q: CUDA is %w (libtorch %s; use --device cpu, or build the shim against a CUDA libtorch)", s, ErrDeviceUnavailable, Version())
		}
		if idx >= CUDADeviceCount() {
			return CPU, fmt.Errorf("device %q: %w: only %d CUDA device(s) visible", s, ErrDeviceUnavailable, CUDADeviceCount())
		}
		return CUDA(idx), nil
	}
	return CPU, fmt.Errorf("device %q: want auto, cpu, cuda or cuda:N", s)
}
