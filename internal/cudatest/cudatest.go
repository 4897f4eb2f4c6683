// Package cudatest decides whether a test that needs CUDA runs: with SPREADTRAIN_TEST_CUDA=1 (what
// bench/gpu_check.sh sets on the GPU machine) a missing GPU fails the test; otherwise the test runs
// where a GPU is visible and skips with a NOTE where none is. SPREADTRAIN_TEST_CUDA=cpu runs the CUDA
// tests' bodies on the CPU (against the CPU): the rehearsal of bench/gpu_check.sh, which proves
// everything but CUDA itself.
package cudatest

import (
	"os"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Env is the variable that makes CUDA tests mandatory.
const Env = "SPREADTRAIN_TEST_CUDA"

// Device returns cuda:0, or skips (fails, when Env is 1) the test when libtorch sees no GPU.
func Device(t testing.TB) torch.Device {
	t.Helper()
	if os.Getenv(Env) == "cpu" {
		t.Logf("NOTE: %s=cpu: the CUDA test runs on the CPU (a rehearsal; it compares the CPU with itself)", Env)
		return torch.CPU
	}
	if !torch.CUDAAvailable() {
		if os.Getenv(Env) == "1" {
			t.Fatalf("%s=1 but libtorch %s sees no CUDA device (a CPU-only libtorch, or no driver)", Env, torch.Version())
		}
		t.Skipf("NOTE: SKIPPED, no CUDA device (libtorch %s); bench/gpu_check.sh runs this on a GPU with %s=1", torch.Version(), Env)
	}
	return torch.CUDA(0)
}

// MaxDiff is the largest |a - b| over two tensors of the same shape, on any devices, scaled by
// 1 + max |b|: the relative error the CUDA-against-CPU tests bound.
func MaxDiff(a, b *torch.Tensor) float64 {
	var d float64
	torch.WithScope(func() {
		x, y := a.Detach().ToDevice(torch.CPU, torch.Float64), b.Detach().ToDevice(torch.CPU, torch.Float64)
		d = x.Sub(y).Abs().Max().Item() / (1 + y.Abs().Max().Item())
	})
	return d
}
