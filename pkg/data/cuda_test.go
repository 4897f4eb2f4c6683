package data

import (
	"testing"

	"github.com/spreadtrain/spreadtrain/internal/cudatest"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Given the same parameters, augmentation on CUDA gives the CPU's images within float32 tolerance,
// and drawing them there copies nothing to the host.
func TestCUDAAugmentMatchesCPU(t *testing.T) {
	dev := cudatest.Device(t)
	torch.WithScope(func() {
		a, err := NewAugmenter(DefaultAugment(), "cifar10", 3, 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		x := randomImages(32, 3, 32, 32)
		torch.ManualSeed(6)
		p := a.Sample(32, torch.CPU)
		on := func(t *torch.Tensor) *torch.Tensor {
			if t == nil {
				return nil
			}
			return t.On(dev)
		}
		gp := &AugmentParams{Boxes: on(p.Boxes), Flip: on(p.Flip), Jitter: on(p.Jitter), Factors: on(p.Factors), Order: on(p.Order), Gray: on(p.Gray)}
		xc, xg := ToFloat(x), ToFloat(x.On(dev))
		if d := cudatest.MaxDiff(a.Apply(xg, gp), a.Apply(xc, p)); d > 1e-4 {
			t.Errorf("augmented on CUDA vs CPU: relative difference %.3g", d)
		}
		before := torch.HostCopies()
		if _, err := a.Views(x.On(dev), 2); err != nil {
			t.Fatal(err)
		}
		if n := torch.HostCopies() - before; n != 0 {
			t.Errorf("Views on CUDA: %d host copies, want 0", n)
		}
	})
}
