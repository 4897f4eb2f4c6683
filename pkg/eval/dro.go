package eval

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// DROConfig configures the group DRO probe (Sagawa et al. 2020, online algorithm): a linear softmax
// classifier on frozen, standardised features trained with mini-batch AdamW; at every step each
// group g present in the batch updates q_g <- q_g * exp(Eta * loss_g) (loss_g its mean batch loss),
// q is renormalised, and the step minimises sum_g q_g loss_g. The final iterate is reported.
type DROConfig struct {
	Eta           float64 // group-weight step size; default 0.01
	LR            float64 // AdamW learning rate; default 0.01
	WeightDecay   float64 // AdamW decoupled weight decay on W; default 1e-4
	Steps         int     // optimisation steps; default 2000
	BatchSize     int     // default 1024 (the whole set when smaller)
	NoStandardize bool
	Seed          int64
	// Adjustment is Sagawa et al.'s group adjustment C: the q update sees loss_g + C/sqrt(n_g), so
	// small groups, whose training loss understates their test loss, weigh more. Default 0.
	Adjustment float64
	// SelectEvery: given validation data (GroupDROSelect), the probe is scored on it every
	// SelectEvery steps (default Steps/20) and the iterate with the best worst-group validation
	// accuracy is kept instead of the last.
	SelectEvery int
}

func (c *DROConfig) defaults() error {
	if c.Eta == 0 {
		c.Eta = 0.01
	}
	if c.LR == 0 {
		c.LR = 0.01
	}
	if c.WeightDecay == 0 {
		c.WeightDecay = 1e-4
	}
	if c.Steps == 0 {
		c.Steps = 2000
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1024
	}
	if c.SelectEvery == 0 {
		c.SelectEvery = max(1, c.Steps/20)
	}
	if !(c.Eta > 0) || !(c.LR > 0) || c.WeightDecay < 0 || c.Steps < 1 || c.BatchSize < 1 || c.Adjustment < 0 || c.SelectEvery < 1 ||
		math.IsInf(c.Eta, 0) || math.IsInf(c.LR, 0) {
		return fmt.Errorf("group DRO settings: eta %v and lr %v must be positive, weight decay %v and adjustment %v >= 0, steps %d, batch size %d and select-every %d >= 1",
			c.Eta, c.LR, c.WeightDecay, c.Adjustment, c.Steps, c.BatchSize, c.SelectEvery)
	}
	return nil
}

// GroupWeight is a training group's final DRO weight q_g.
type GroupWeight struct {
	Group  int64   `json:"group"`
	N      int     `json:"n"`
	Weight float64 `json:"weight"`
}

// DROResult is a group DRO probe's accuracy; PerGroup and WorstGroupAcc use the test split's groups.
type DROResult struct {
	Eta         float64 `json:"eta"`
	Adjustment  float64 `json:"adjustment,omitempty"`
	WeightDecay float64 `json:"weight_decay,omitempty"`
	// with validation data: the step kept, and its worst-group accuracy on the validation groups
	SelectedStep     int           `json:"selected_step,omitempty"`
	ValWorstGroupAcc *float64      `json:"val_worst_group_acc,omitempty"`
	ValPredictions   []int64       `json:"-"`
	NumTrainGroup    int           `json:"num_train_groups"`
	TrainAcc         float64       `json:"train_acc"`
	TestAcc          float64       `json:"test_acc"`
	PerGroup         []GroupAcc    `json:"per_group"`
	WorstGroupAcc    float64       `json:"worst_group_acc"`
	GroupWeights     []GroupWeight `json:"group_weights"`
	Seconds          float64       `json:"seconds"`
	Predictions      []int64       `json:"-"`
}

// GroupDRO trains the group DRO probe on train with train.Groups as its groups (discovered
// (class, cluster) ids or true groups) and reports accuracy on test by test.Groups (the true groups).
func GroupDRO(train, test Data, cfg DROConfig) (*DROResult, error) {
	var res *DROResult
	err := guard("group DRO", func() error {
		var err error
		res, err = groupDRO(train, test, nil, cfg)
		return err
	})
	return res, err
}

// GroupDROSelect is GroupDRO with model selection: every cfg.SelectEvery steps the probe is scored
// on val by val.Groups (found groups: the true ones are not known outside the test set), and the
// iterate with the best worst-group validation accuracy (the earliest on a tie) is the result.
func GroupDROSelect(train, val, test Data, cfg DROConfig) (*DROResult, error) {
	var res *DROResult
	err := guard("group DRO with validation", func() error {
		_, dv, err := checkData("val", val)
		if err != nil {
			return err
		}
		if train.X.Defined() && train.X.Dim() == 2 && dv != train.X.Size(1) {
			return fmt.Errorf("val features have %d columns, train features %d", dv, train.X.Size(1))
		}
		if val.Groups == nil {
			return fmt.Errorf("val has no groups: set val.Groups to the found groups of the validation rows")
		}
		res, err = groupDRO(train, test, &val, cfg)
		return err
	})
	return res, err
}

func groupDRO(train, test Data, val *Data, cfg DROConfig) (*DROResult, error) {
	start := time.Now()
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	ntr, _, d, err := checkSplits(train, test)
	if err != nil {
		return nil, err
	}
	if train.Groups == nil {
		return nil, fmt.Errorf("train has no groups: set train.Groups (discovered clusters or true groups)")
	}
	if test.Groups == nil {
		return nil, fmt.Errorf("test has no groups: set test.Groups to the true test groups")
	}
	c := maxLabel(train.Labels, test.Labels) + 1
	if c < 2 {
		return nil, fmt.Errorf("the labels hold a single class: a probe needs at least 2")
	}
	// dense training group ids
	gid := map[int64]int{}
	var gids []int64
	for _, g := range train.Groups {
		if _, ok := gid[g]; !ok {
			gid[g] = 0
			gids = append(gids, g)
		}
	}
	sort.Slice(gids, func(i, j int) bool { return gids[i] < gids[j] })
	for i, g := range gids {
		gid[g] = i
	}
	ng := len(gids)
	gOf := make([]int, ntr)
	gSize := make([]int, ng)
	for i, g := range train.Groups {
		gOf[i] = gid[g]
		gSize[gOf[i]]++
	}

	dev := train.X.Device()
	xtr, xte := floatFeatures(train.X), floatFeatures(test.X).On(dev)
	m := &linearModel{d: d, c: c}
	xs := xtr
	if !cfg.NoStandardize {
		m.mean, m.inv = standardiser(xtr)
		xs = xtr.Sub(m.mean).Mul(m.inv)
	}
	ytr := longOn(train.Labels, dev)
	yhot := ytr.OneHot(c).To(torch.Float32)
	m.w = torch.Zeros([]int64{d, c}, torch.Float32, dev)
	m.b = torch.Zeros([]int64{c}, torch.Float32, dev)
	mw, vw := torch.Zeros([]int64{d, c}, torch.Float32, dev), torch.Zeros([]int64{d, c}, torch.Float32, dev)
	mb, vb := torch.Zeros([]int64{c}, torch.Float32, dev), torch.Zeros([]int64{c}, torch.Float32, dev)

	q := make([]float64, ng)
	for i := range q {
		q[i] = 1 / float64(ng)
	}
	var xval *torch.Tensor
	bestStep, bestVal := 0, -1.0
	var bestW, bestB *torch.Tensor
	if val != nil {
		xval = floatFeatures(val.X).On(dev)
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	bs := min(cfg.BatchSize, int(ntr))
	var perm []int
	pos := int(ntr)
	grad := make([]float64, d*c+c)
	for step := 1; step <= cfg.Steps; step++ {
		var idx []int
		if bs == int(ntr) {
			if perm == nil {
				perm = make([]int, ntr)
				for i := range perm {
					perm[i] = i
				}
			}
			idx = perm
		} else {
			if pos+bs > int(ntr) {
				perm, pos = rng.Perm(int(ntr)), 0
			}
			idx = perm[pos : pos+bs]
			pos += bs
		}
		torch.WithScope(func() {
			var xb, yb, hb *torch.Tensor
			if bs == int(ntr) {
				xb, yb, hb = xs, ytr, yhot
			} else {
				it := longOn(toInt64(idx), dev)
				xb, yb, hb = xs.IndexSelect(0, it), ytr.IndexSelect(0, it), yhot.IndexSelect(0, it)
			}
			// per-sample losses at the current weights -> group losses -> q update -> sample weights
			_, ce := softmaxLossGrad(xb, yb, hb, m.w, m.b, torch.Ones([]int64{int64(len(idx))}, torch.Float32, dev), nil)
			cev := ce.Float64s()
			gl, gn := make([]float64, ng), make([]float64, ng)
			for j, i := range idx {
				gl[gOf[i]] += cev[j]
				gn[gOf[i]]++
			}
			var z float64
			for g := range q {
				if gn[g] > 0 {
					q[g] *= math.Exp(cfg.Eta * (gl[g]/gn[g] + cfg.Adjustment/math.Sqrt(float64(gSize[g]))))
				}
				z += q[g]
			}
			for g := range q {
				q[g] /= z
			}
			sw := make([]float32, len(idx))
			for j, i := range idx {
				sw[j] = float32(q[gOf[i]] / gn[gOf[i]])
			}
			softmaxLossGrad(xb, yb, hb, m.w, m.b, torch.FromSlice(sw).On(dev), grad)
			g32 := make([]float32, len(grad))
			for i, v := range grad {
				g32[i] = float32(v)
			}
			gt := torch.FromSlice(g32).On(dev)
			torch.AdamWUpdate(m.w, gt.Narrow(0, 0, d*c).Reshape(d, c), mw, vw, cfg.LR, 0.9, 0.999, 1e-8, cfg.WeightDecay, int64(step))
			torch.AdamWUpdate(m.b, gt.Narrow(0, d*c, c), mb, vb, cfg.LR, 0.9, 0.999, 1e-8, 0, int64(step))
		})
		if val != nil && (step%cfg.SelectEvery == 0 || step == cfg.Steps) {
			if w := worst(accuracyBy(val.Groups, m.predict(xval), val.Labels)); w > bestVal {
				bestStep, bestVal = step, w
				bestW, bestB = m.w.Clone(), m.b.Clone() // freed with the guard's scope
			}
		}
	}
	res := &DROResult{Eta: cfg.Eta, Adjustment: cfg.Adjustment, WeightDecay: cfg.WeightDecay, NumTrainGroup: ng}
	if val != nil {
		m.w, m.b = bestW, bestB
		res.SelectedStep, res.ValWorstGroupAcc = bestStep, &bestVal
		res.ValPredictions = m.predict(xval)
	}
	ptr, pte := m.predict(xtr), m.predict(xte)
	res.TrainAcc, res.TestAcc = Accuracy(ptr, train.Labels), Accuracy(pte, test.Labels)
	res.PerGroup, res.Predictions = accuracyBy(test.Groups, pte, test.Labels), pte
	res.WorstGroupAcc = worst(res.PerGroup)
	for g, id := range gids {
		res.GroupWeights = append(res.GroupWeights, GroupWeight{Group: id, N: gSize[g], Weight: q[g]})
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
