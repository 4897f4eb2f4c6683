package torch

import (
	"strings"
	"testing"
)

// The start-up check left the CPU convolutions right: either oneDNN passed it, or it failed and was
// switched off (Debian 13's libtorch 2.6 on an AVX-512 CPU), and the kernels now in use pass every
// repetition.
func TestCPUConvolutionCheck(t *testing.T) {
	rel, err := worstConvCheck()
	if err != nil {
		t.Fatal(err)
	}
	if rel > convTolerance || rel == 0 {
		t.Fatalf("float32 convolution and its input gradient against float64: relative error %g", rel)
	}
	switch {
	case CPUKernelNote == "":
	case strings.HasPrefix(CPUKernelNote, "oneDNN's CPU convolutions failed") && !MKLDNNEnabled():
		t.Logf("libtorch %s: %s", Version(), CPUKernelNote)
	default:
		t.Fatalf("libtorch %s: %s (oneDNN on: %v)", Version(), CPUKernelNote, MKLDNNEnabled())
	}
}
