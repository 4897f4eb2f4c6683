package torch

/*
#include "spreadtorch.h"
*/
import "C"

import "fmt"

// convTolerance bounds st_conv_check's relative error: float32 against float64 there is ~1e-7, the
// faulty kernels below are off by ~1.
const convTolerance = 1e-3

// CPUKernelNote is what the start-up check of the CPU convolution kernels found: empty when they
// passed, else what was done about it (the CLI logs it as a warning).
var CPUKernelNote = checkCPUConvolution()

// checkCPUConvolution checks the CPU convolution kernels once per process. Debian 13's libtorch 2.6
// (oneDNN 3.7.2) returns wrong convolution input gradients on an AVX-512 CPU: relative error ~1 in
// this check, the same in that release's python3-torch, and NaN decoder gradients in training.
// When the check fails with oneDNN and passes without it, oneDNN stays off for the process:
// libtorch's own kernels are correct (and likely slower).
func checkCPUConvolution() string {
	if C.st_mkldnn_enabled() == 0 {
		return ""
	}
	bad, err := convCheck()
	if err != nil {
		return fmt.Sprintf("the CPU convolution check could not run: %v", err)
	}
	if bad <= convTolerance {
		return ""
	}
	C.st_set_mkldnn(0)
	good, err := convCheck()
	if err == nil && good <= convTolerance {
		return fmt.Sprintf("oneDNN's CPU convolutions failed a start-up check (relative error %.2g against float64, libtorch %s): switched off, libtorch's own kernels are used (correct, likely slower)", bad, Version())
	}
	C.st_set_mkldnn(1)
	return fmt.Sprintf("the CPU convolutions failed a start-up check with oneDNN (relative error %.2g) and without (%v, %v): results on the CPU may be wrong", bad, good, err)
}

// convCheck runs st_conv_check: the largest relative error of a float32 convolution and its input
// gradient against float64.
func convCheck() (float64, error) {
	var out C.double
	err := Catch(func() { check(C.st_conv_check(&out), "conv_check") })
	return float64(out), err
}

// MKLDNNEnabled reports whether libtorch may use oneDNN (MKL-DNN) for CPU kernels.
func MKLDNNEnabled() bool { return C.st_mkldnn_enabled() != 0 }
