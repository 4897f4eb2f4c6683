package torch

/*
#include "spreadtorch.h"
*/
import "C"

import "fmt"

// convTolerance bounds st_conv_check's relative error: float32 against float64 there is ~1e-7, the
// faulty kernels below are off by ~1.
const convTolerance = 1e-3

// convChecks is how many times the check runs before a kernel passes: the faulty kernels' error
// varies from run to run, and a single check passed by chance in about one process in five of
// two-process training on libtorch 2.6, which left oneDNN on there and the process aborted in
// backward with heap corruption inside oneDNN's convolution backward.
const convChecks = 10

// CPUKernelNote is what the start-up check of the CPU convolution kernels found: empty when they
// passed, else what was done about it (the CLI logs it as a warning).
var CPUKernelNote = checkCPUConvolution()

// checkCPUConvolution checks the CPU convolution kernels once per process (worstConvCheck). Debian
// 13's libtorch 2.6 (oneDNN 3.7.2) returns wrong convolution input gradients on an AVX-512 CPU:
// relative error ~1 in this check, the same in that release's python3-torch, and NaN decoder
// gradients in training.
// When the check fails with oneDNN and passes without it, oneDNN stays off for the process:
// libtorch's own kernels are correct (and likely slower).
func checkCPUConvolution() string {
	if C.st_mkldnn_enabled() == 0 {
		return ""
	}
	bad, err := worstConvCheck()
	if err != nil {
		return fmt.Sprintf("the CPU convolution check could not run: %v", err)
	}
	if bad <= convTolerance {
		return ""
	}
	C.st_set_mkldnn(0)
	good, err := worstConvCheck()
	if err == nil && good <= convTolerance {
		return fmt.Sprintf("oneDNN's CPU convolutions failed a start-up check (relative error %.2g against float64, libtorch %s): switched off, libtorch's own kernels are used (correct, likely slower)", bad, Version())
	}
	C.st_set_mkldnn(1)
	return fmt.Sprintf("the CPU convolutions failed a start-up check with oneDNN (relative error %.2g) and without (%v, %v): results on the CPU may be wrong", bad, good, err)
}

// worstConvCheck is the largest error of up to convChecks runs of convCheck on varied shapes (so
// that buffers land at other places and other kernels may be picked), stopping at the first run
// over convTolerance.
func worstConvCheck() (float64, error) {
	worst := 0.0
	for i := 0; i < convChecks && worst <= convTolerance; i++ {
		e, err := convCheck(int64(2+i%4), int64(12+2*(i%5)))
		if err != nil {
			return 0, err
		}
		worst = max(worst, e)
	}
	return worst, nil
}

// convCheck runs st_conv_check: the largest relative error of a float32 3x3 convolution (batch x 8
// channels x size x size, 8 output channels) and its input gradient against float64.
func convCheck(batch, size int64) (float64, error) {
	var out C.double
	err := Catch(func() { check(C.st_conv_check(C.int64_t(batch), C.int64_t(size), &out), "conv_check") })
	return float64(out), err
}

// MKLDNNEnabled reports whether libtorch may use oneDNN (MKL-DNN) for CPU kernels.
func MKLDNNEnabled() bool { return C.st_mkldnn_enabled() != 0 }
