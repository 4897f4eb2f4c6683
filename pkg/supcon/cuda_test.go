package supcon_test

import (
	"testing"

	"github.com/spreadtrain/spreadtrain/internal/cudatest"
	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Every contrastive loss and its gradient on CUDA equal the CPU's within float32 tolerance.
func TestCUDALossesMatchCPU(t *testing.T) {
	dev := cudatest.Device(t)
	losses := map[string]func(v supcon.Views) *torch.Tensor{
		"supcon all":       func(v supcon.Views) *torch.Tensor { return supcon.SupCon(v, 0.5, supcon.DenomAll) },
		"supcon negatives": func(v supcon.Views) *torch.Tensor { return supcon.SupCon(v, 0.5, supcon.DenomNegatives) },
		"cnce":             func(v supcon.Views) *torch.Tensor { return supcon.CNCE(v, 0.5) },
		"simclr":           func(v supcon.Views) *torch.Tensor { return supcon.SimCLR(v, 0.5) },
		"spread":           func(v supcon.Views) *torch.Tensor { return supcon.Spread(v, 0.5, 0.7, supcon.DenomAll) },
	}
	for name, loss := range losses {
		torch.WithScope(func() {
			torch.ManualSeed(5)
			z := torch.Randn([]int64{64, 2, 32}, torch.Float32, torch.CPU).Normalize(2, 2, 1e-12)
			y := torch.Randint(0, 3, []int64{64}, torch.Int64, torch.CPU)
			zc, zg := z.Clone().SetRequiresGrad(true), z.On(dev).SetRequiresGrad(true)
			lc, lg := loss(supcon.Views{Z: zc, Labels: y}), loss(supcon.Views{Z: zg, Labels: y.On(dev)})
			if d := cudatest.MaxDiff(lg, lc); d > 1e-5 {
				t.Errorf("%s: CUDA %v, CPU %v (relative difference %.3g)", name, lg.Item(), lc.Item(), d)
			}
			lc.Backward()
			lg.Backward()
			if d := cudatest.MaxDiff(zg.Grad(), zc.Grad()); d > 1e-5 {
				t.Errorf("%s gradient: CUDA differs from the CPU by %.3g", name, d)
			}
		})
	}
}
