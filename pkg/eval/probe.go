package eval

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"time"

	"gonum.org/v1/gonum/optimize"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// ProbeConfig configures the linear probe: multinomial logistic regression on frozen features,
// fitted full-batch with L-BFGS (gonum/optimize, More-Thuente line search) from zero weights, so the
// fit is deterministic; the seed only draws the validation split used to select the weight decay.
//
// The objective is mean cross-entropy + WeightDecay/2 * ||W||^2 (bias not penalised) on features
// standardised with the training mean and standard deviation. 0 means the defaults below.
type ProbeConfig struct {
	WeightDecay       float64   // L2 penalty lambda; default 1e-4 (sklearn's C=1 is 1/N)
	SelectWeightDecay bool      // choose lambda from WeightDecayGrid by accuracy on a held-out split of train
	WeightDecayGrid   []float64 // default 1e-6, 1e-5, 1e-4, 1e-3, 1e-2
	ValFraction       float64   // held-out fraction for the selection; default 0.1
	MaxIter           int       // L-BFGS iterations; default 500
	GradTol           float64   // stop when the largest gradient entry is below this; default 1e-5
	NoStandardize     bool      // use the raw features
	Seed              int64
}

func (c *ProbeConfig) defaults() error {
	if c.WeightDecay < 0 || math.IsNaN(c.WeightDecay) {
		return fmt.Errorf("probe weight decay %v: must be >= 0", c.WeightDecay)
	}
	if c.WeightDecay == 0 {
		c.WeightDecay = 1e-4
	}
	if len(c.WeightDecayGrid) == 0 {
		c.WeightDecayGrid = []float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2}
	}
	for _, w := range c.WeightDecayGrid {
		if !(w >= 0) {
			return fmt.Errorf("probe weight decay grid value %v: must be >= 0", w)
		}
	}
	if c.ValFraction == 0 {
		c.ValFraction = 0.1
	}
	if !(c.ValFraction > 0 && c.ValFraction < 1) {
		return fmt.Errorf("probe validation fraction %v: must be in (0, 1)", c.ValFraction)
	}
	if c.MaxIter == 0 {
		c.MaxIter = 500
	}
	if c.MaxIter < 0 {
		return fmt.Errorf("probe max iterations %d: must be positive", c.MaxIter)
	}
	if c.GradTol == 0 {
		c.GradTol = 1e-5
	}
	return nil
}

// ProbeResult is a fitted probe's accuracy. PerClass is on the test split; PerGroup and
// WorstGroupAcc are present when the test split carries groups.
type ProbeResult struct {
	NumClasses    int        `json:"num_classes"`
	TrainAcc      float64    `json:"train_acc"`
	TestAcc       float64    `json:"test_acc"`
	PerClass      []GroupAcc `json:"per_class"`
	PerGroup      []GroupAcc `json:"per_group,omitempty"`
	WorstGroupAcc *float64   `json:"worst_group_acc,omitempty"`
	WeightDecay   float64    `json:"weight_decay"`
	Iterations    int        `json:"iterations"`
	Converged     bool       `json:"converged"`
	FinalLoss     float64    `json:"final_loss"`
	Seconds       float64    `json:"seconds"`
	Predictions   []int64    `json:"-"` // test predictions
}

// linearModel is a fitted softmax classifier over (optionally standardised) features.
type linearModel struct {
	d, c      int64
	w         *torch.Tensor // [D, C]
	b         *torch.Tensor // [C]
	mean, inv *torch.Tensor // standardisation (nil when off)
}

func (m *linearModel) logits(x *torch.Tensor) *torch.Tensor {
	if m.mean != nil {
		x = x.Sub(m.mean).Mul(m.inv)
	}
	return x.MM(m.w).Add(m.b)
}

// predict returns argmax classes for the rows of x, in blocks.
func (m *linearModel) predict(x *torch.Tensor) []int64 {
	n := x.Size(0)
	out := make([]int64, 0, n)
	const block = 65536
	for s := int64(0); s < n; s += block {
		torch.WithScope(func() {
			out = append(out, m.logits(x.Narrow(0, s, min(block, n-s))).Argmax(1, false).Int64s()...)
		})
	}
	return out
}

// standardiser returns the mean and 1/std of the rows of x (std floored to avoid division by 0).
func standardiser(x *torch.Tensor) (mean, inv *torch.Tensor) {
	mean = x.MeanDims(true, 0)
	std := x.Sub(mean).Square().MeanDims(true, 0).Sqrt()
	inv = std.ClampMin(1e-6).Reciprocal().MaskedFill(std.LtScalar(1e-12), 1)
	return mean, inv
}

// softmaxObjective is mean (or weighted) cross-entropy + lambda/2 ||W||^2 with its analytic gradient.
type softmaxObjective struct {
	x      *torch.Tensor // [N, D] float32, standardised
	y      *torch.Tensor // [N] int64
	yhot   *torch.Tensor // [N, C] float32
	d, c   int64
	lambda float64
}

// eval returns the objective at params (W row-major [D, C], then b [C]) and writes its gradient.
// sw, when not nil, holds per-sample weights [N] that replace the 1/N of the mean.
func (o *softmaxObjective) eval(params []float64, grad []float64, sw *torch.Tensor) float64 {
	var loss float64
	torch.WithScope(func() {
		p32 := make([]float32, len(params))
		for i, v := range params {
			p32[i] = float32(v)
		}
		pt := torch.FromSlice(p32).On(o.x.Device())
		w := pt.Narrow(0, 0, o.d*o.c).Reshape(o.d, o.c)
		b := pt.Narrow(0, o.d*o.c, o.c)
		loss, _ = softmaxLossGrad(o.x, o.y, o.yhot, w, b, sw, grad)
	})
	var reg float64
	nw := int(o.d * o.c)
	for i := 0; i < nw; i++ {
		reg += params[i] * params[i]
		grad[i] += o.lambda * params[i]
	}
	return loss + o.lambda/2*reg
}

// softmaxLossGrad computes the (weighted) cross-entropy of x W + b and, when grad is not nil, copies
// dW then db into it. It also returns the per-sample losses as a tensor.
func softmaxLossGrad(x, y, yhot, w, b, sw *torch.Tensor, grad []float64) (float64, *torch.Tensor) {
	logits := x.MM(w).Add(b)
	lse := logits.LogSumExp(true, 1)
	ce := lse.Squeeze(1).Sub(logits.Gather(1, y.Unsqueeze(1)).Squeeze(1))
	g := logits.Sub(lse).Exp().Sub(yhot)
	var loss float64
	if sw == nil {
		n := float64(x.Size(0))
		loss = ce.To(torch.Float64).Mean().Item()
		g = g.DivScalar(n)
	} else {
		loss = ce.To(torch.Float64).Mul(sw.To(torch.Float64)).Sum().Item()
		g = g.Mul(sw.Unsqueeze(1))
	}
	if grad != nil {
		gw := x.T().MM(g).Float64s()
		gb := g.SumDims(false, 0).Float64s()
		copy(grad, gw)
		copy(grad[len(gw):], gb)
	}
	return loss, ce
}

// fitLBFGS minimises the objective from zero and returns the model's parameters.
func fitLBFGS(o *softmaxObjective, maxIter int, gradTol float64) (params []float64, iters int, converged bool, loss float64, err error) {
	dim := int(o.d*o.c + o.c)
	var lastX, lastG []float64
	var lastF float64
	evalAt := func(x []float64) {
		if lastX != nil && equal(lastX, x) {
			return
		}
		if lastX == nil {
			lastX, lastG = make([]float64, dim), make([]float64, dim)
		}
		copy(lastX, x)
		lastF = o.eval(x, lastG, nil)
	}
	prob := optimize.Problem{
		Func: func(x []float64) float64 { evalAt(x); return lastF },
		Grad: func(g, x []float64) { evalAt(x); copy(g, lastG) },
	}
	settings := &optimize.Settings{
		GradientThreshold: gradTol,
		MajorIterations:   maxIter,
		Converger:         &optimize.FunctionConverge{Absolute: 1e-9, Relative: 1e-9, Iterations: 20},
	}
	res, merr := optimize.Minimize(prob, make([]float64, dim), settings, &optimize.LBFGS{Store: 20})
	if res == nil {
		return nil, 0, false, 0, fmt.Errorf("L-BFGS failed: %v", merr)
	}
	if merr != nil && !errors.Is(merr, optimize.ErrLinesearcherFailure) && !isNoProgress(merr) {
		return nil, 0, false, 0, fmt.Errorf("L-BFGS failed: %v", merr)
	}
	if math.IsNaN(res.F) || math.IsInf(res.F, 0) {
		return nil, 0, false, 0, fmt.Errorf("L-BFGS diverged (loss %v): features may hold NaN or Inf", res.F)
	}
	// Failures of the line search after progress stalls happen in float32 near the optimum: keep the point.
	conv := res.Status == optimize.GradientThreshold || res.Status == optimize.FunctionConvergence || merr != nil
	return res.X, res.Stats.MajorIterations, conv, res.F, nil
}

func isNoProgress(err error) bool {
	return err != nil && (errors.Is(err, optimize.ErrNoProgress) || err.Error() == optimize.ErrNoProgress.Error())
}

func equal(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fitProbe fits a model on x (float32, device) with labels y (C classes) and weight decay lambda.
func fitProbe(x *torch.Tensor, y []int64, c int64, lambda float64, cfg ProbeConfig) (*linearModel, int, bool, float64, error) {
	dev := x.Device()
	m := &linearModel{d: x.Size(1), c: c}
	xs := x
	if !cfg.NoStandardize {
		m.mean, m.inv = standardiser(x)
		xs = x.Sub(m.mean).Mul(m.inv)
	}
	yt := longOn(y, dev)
	o := &softmaxObjective{x: xs, y: yt, yhot: yt.OneHot(c).To(torch.Float32), d: m.d, c: c, lambda: lambda}
	params, iters, conv, loss, err := fitLBFGS(o, cfg.MaxIter, cfg.GradTol)
	if err != nil {
		return nil, 0, false, 0, err
	}
	p32 := make([]float32, len(params))
	for i, v := range params {
		p32[i] = float32(v)
	}
	pt := torch.FromSlice(p32).On(dev)
	m.w = pt.Narrow(0, 0, m.d*c).Reshape(m.d, c)
	m.b = pt.Narrow(0, m.d*c, c)
	return m, iters, conv, loss, nil
}

// LinearProbe fits multinomial logistic regression on train and reports train/test top-1 accuracy,
// per-class test accuracy and, when test.Groups is set, per-group and worst-group test accuracy.
// Every test label must occur in train.
func LinearProbe(train, test Data, cfg ProbeConfig) (*ProbeResult, error) {
	var res *ProbeResult
	err := guard("linear probe", func() error {
		var err error
		res, err = linearProbe(train, test, cfg)
		return err
	})
	return res, err
}

func linearProbe(train, test Data, cfg ProbeConfig) (*ProbeResult, error) {
	start := time.Now()
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	ntr, _, _, err := checkSplits(train, test)
	if err != nil {
		return nil, err
	}
	c := maxLabel(train.Labels, test.Labels) + 1
	seen := make([]bool, c)
	for _, l := range train.Labels {
		seen[l] = true
	}
	for i, l := range test.Labels {
		if !seen[l] {
			return nil, fmt.Errorf("test label %d (row %d) has no training examples: the probe cannot predict it", l, i)
		}
	}
	if c < 2 {
		return nil, fmt.Errorf("the labels hold a single class: a probe needs at least 2")
	}
	xtr, xte := floatFeatures(train.X), floatFeatures(test.X).On(train.X.Device())
	lambda := cfg.WeightDecay
	if cfg.SelectWeightDecay {
		rng := rand.New(rand.NewSource(cfg.Seed))
		perm := rng.Perm(int(ntr))
		nval := max(1, int(float64(ntr)*cfg.ValFraction))
		if int(ntr)-nval < 2 {
			return nil, fmt.Errorf("%d training rows are too few to hold out a validation split", ntr)
		}
		val, fit := perm[:nval], perm[nval:]
		pick := func(idx []int) (*torch.Tensor, []int64) {
			ys := make([]int64, len(idx))
			for i, j := range idx {
				ys[i] = train.Labels[j]
			}
			return xtr.IndexSelect(0, longOn(toInt64(idx), xtr.Device())), ys
		}
		xf, yf := pick(fit)
		xv, yv := pick(val)
		best := -1.0
		for _, lam := range cfg.WeightDecayGrid {
			var acc float64
			var ferr error
			torch.WithScope(func() {
				m, _, _, _, err := fitProbe(xf, yf, c, lam, cfg)
				if err != nil {
					ferr = err
					return
				}
				acc = Accuracy(m.predict(xv), yv)
			})
			if ferr != nil {
				return nil, ferr
			}
			if acc >= best { // ties go to the stronger penalty (grid is ascending)
				best, lambda = acc, lam
			}
		}
	}
	m, iters, conv, loss, err := fitProbe(xtr, train.Labels, c, lambda, cfg)
	if err != nil {
		return nil, err
	}
	ptr, pte := m.predict(xtr), m.predict(xte)
	res := &ProbeResult{
		NumClasses: int(c), TrainAcc: Accuracy(ptr, train.Labels), TestAcc: Accuracy(pte, test.Labels),
		PerClass: accuracyBy(test.Labels, pte, test.Labels), WeightDecay: lambda, Iterations: iters,
		Converged: conv, FinalLoss: loss, Predictions: pte,
	}
	if test.Groups != nil {
		res.PerGroup = accuracyBy(test.Groups, pte, test.Labels)
		w := worst(res.PerGroup)
		res.WorstGroupAcc = &w
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
