package supcon

import (
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// METHOD.md's cheap check: two coarse classes, each a mixture of 3 Gaussian subclasses (sizes
// 400/200/100) in R^32, an MLP to a 16-d sphere, additive-noise augmentation, tau 0.5, batch 128.
// SupCon collapses each class; L_spread keeps the classes apart while spreading them, so that the
// subclasses stay linearly separable. Settings follow tools/reference/synthetic.py.
type gaussianMixture struct {
	x            *torch.Tensor // [N, 32]
	coarse, fine *torch.Tensor // [N]
}

func newMixture(means *torch.Tensor) gaussianMixture {
	sizes := []int64{400, 200, 100, 400, 200, 100}
	var xs, fines []*torch.Tensor
	for sub, n := range sizes {
		xs = append(xs, torch.Randn([]int64{n, 32}, torch.Float32, torch.CPU).Add(means.Narrow(0, int64(sub), 1)))
		fines = append(fines, torch.Full([]int64{n}, float64(sub), torch.Int64, torch.CPU))
	}
	fine := torch.Cat(fines, 0)
	return gaussianMixture{x: torch.Cat(xs, 0), fine: fine, coarse: fine.GeScalar(3).To(torch.Int64)}
}

type synthResult struct{ intraCos, coarseProbe, fineProbe float64 }

func runSynthetic(t *testing.T, alpha float64) synthResult {
	torch.ManualSeed(11)
	var res synthResult
	torch.WithScope(func() {
		means := torch.Randn([]int64{6, 32}, torch.Float32, torch.CPU)
		train, test := newMixture(means), newMixture(means)
		torch.Persist(train.x, train.coarse, train.fine, test.x, test.coarse, test.fine)
		mlp := torch.NewMLP(32, 128, 16, false)
		defer mlp.Free()
		params := mlp.Parameters()
		opt, _ := nn.NewOptimizer(nn.OptimConfig{Name: "adamw", LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, params)
		n := train.x.Size(0)
		for step := 0; step < 1500; step++ {
			torch.WithScope(func() {
				idx := torch.Randint(0, n, []int64{128}, torch.Int64, torch.CPU)
				x := train.x.IndexSelect(0, idx)
				views := torch.Stack([]*torch.Tensor{
					x.Add(torch.Randn(x.Shape(), torch.Float32, torch.CPU).MulScalar(0.5)),
					x.Add(torch.Randn(x.Shape(), torch.Float32, torch.CPU).MulScalar(0.5)),
				}, 1) // [128, 2, 32]
				z := mlp.Forward(views.Reshape(256, 32)).Reshape(128, 2, 16)
				Spread(Views{Z: z, Labels: train.coarse.IndexSelect(0, idx)}, 0.5, alpha, DenomAll).Backward()
				opt.Step(1e-3)
				opt.ZeroGrad()
			})
		}
		var ftrain, ftest *torch.Tensor
		torch.NoGrad(func() {
			ftrain = mlp.Forward(train.x).Normalize(2, 1, 1e-12)
			ftest = mlp.Forward(test.x).Normalize(2, 1, 1e-12)
		})
		res.intraCos = meanIntraClassCosine(ftest, test.coarse)
		res.coarseProbe = probeAccuracy(ftrain, train.coarse, ftest, test.coarse, 2)
		res.fineProbe = probeAccuracy(ftrain, train.fine, ftest, test.fine, 6)
	})
	return res
}

// meanIntraClassCosine averages <z_i, z_j> over distinct same-class pairs of unit vectors.
func meanIntraClassCosine(z, labels *torch.Tensor) float64 {
	var total, pairs float64
	for c := 0; c < 2; c++ {
		zc := z.MaskedSelect(labels.EqScalar(float64(c)).Unsqueeze(1)).Reshape(-1, z.Size(1))
		m := float64(zc.Size(0))
		s := zc.SumDims(false, 0)
		total += s.Mul(s).Sum().Item() - m // |sum z|^2 - sum |z|^2
		pairs += m * (m - 1)
	}
	return total / pairs
}

// probeAccuracy fits a linear softmax classifier on frozen features and scores the test split.
func probeAccuracy(xtr, ytr, xte, yte *torch.Tensor, classes int64) float64 {
	lin := torch.NewLinear(xtr.Size(1), classes, true)
	defer lin.Free()
	opt, _ := nn.NewOptimizer(nn.OptimConfig{Name: "adamw", LR: 0.05, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, lin.Parameters())
	for i := 0; i < 300; i++ {
		torch.WithScope(func() {
			torch.CrossEntropy(lin.Forward(xtr), ytr, torch.ReduceMean, 0).Backward()
			opt.Step(0.05)
			opt.ZeroGrad()
		})
	}
	var acc float64
	torch.NoGrad(func() {
		acc = lin.Forward(xte).Argmax(1, false).Eq(yte).To(torch.Float64).Mean().Item()
	})
	return acc
}

func TestSyntheticCollapseVersusSpread(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED in -short mode: a 2 x 1500-step training experiment")
	}
	sc := runSynthetic(t, 1)
	sp := runSynthetic(t, 0.6)
	t.Logf("SupCon:          intra-class cos %.3f, coarse probe %.3f, fine probe %.3f", sc.intraCos, sc.coarseProbe, sc.fineProbe)
	t.Logf("L_spread a=0.6:  intra-class cos %.3f, coarse probe %.3f, fine probe %.3f", sp.intraCos, sp.coarseProbe, sp.fineProbe)
	const majority = 800.0 / 1400 // the largest subclass of each class
	if sc.intraCos <= 0.95 {
		t.Errorf("SupCon did not collapse the classes: intra-class cosine %.3f", sc.intraCos)
	}
	if sc.fineProbe > majority+0.2 {
		t.Errorf("SupCon's fine probe %.3f is far above the majority-subclass rate %.3f", sc.fineProbe, majority)
	}
	if sp.coarseProbe < 0.9 || sp.fineProbe < 0.9 {
		t.Errorf("L_spread: coarse probe %.3f, fine probe %.3f; want both >= 0.9", sp.coarseProbe, sp.fineProbe)
	}
	if sp.intraCos > sc.intraCos-0.2 {
		t.Errorf("L_spread did not spread the classes: intra-class cosine %.3f vs SupCon %.3f", sp.intraCos, sc.intraCos)
	}
}
