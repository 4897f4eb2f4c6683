package nn

import (
	"encoding/json"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func TestMain(m *testing.M) {
	torch.SetNumThreads(1)
	os.Exit(m.Run())
}

type trajectory struct {
	P0    []float64   `json:"p0"`
	Grads [][]float64 `json:"grads"`
	LRs   []float64   `json:"lrs"`
	Final []float64   `json:"final"`
}

// The optimizers reproduce torch.optim's trajectories (tools/reference/gen_nn_fixtures.py).
func TestOptimizersMatchTorchOptim(t *testing.T) {
	raw, err := os.ReadFile("testdata/optim.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases map[string]trajectory
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	configs := map[string]OptimConfig{
		"adamw":           {Name: "adamw", LR: 1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01},
		"adamw_b":         {Name: "adamw", LR: 1, Beta1: 0.5, Beta2: 0.9, Eps: 1e-6, WeightDecay: 0.3},
		"sgd_momentum_wd": {Name: "sgd", LR: 1, Momentum: 0.9, WeightDecay: 5e-4},
		"sgd_nesterov":    {Name: "sgd", LR: 1, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3},
		"sgd_plain":       {Name: "sgd", LR: 1},
		// the multi-tensor path against the same trajectories
		"adamw_foreach":   {Name: "adamw", LR: 1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Foreach: true},
		"adamw_b_foreach": {Name: "adamw", LR: 1, Beta1: 0.5, Beta2: 0.9, Eps: 1e-6, WeightDecay: 0.3, Foreach: true},
	}
	for name, cfg := range configs {
		tc, ok := cases[strings.TrimSuffix(name, "_foreach")]
		if !ok {
			t.Fatalf("fixture lacks %s", name)
		}
		t.Run(name, func(t *testing.T) {
			p := torch.FromSlice(tc.P0).SetRequiresGrad(true)
			torch.Persist(p)
			params := []torch.Named{{Name: "p", Tensor: p}}
			opt, err := NewOptimizer(cfg, params)
			if err != nil {
				t.Fatal(err)
			}
			for i, g := range tc.Grads {
				torch.WithScope(func() {
					// gradients arrive through backward, as in training: d(p . g)/dp = g
					p.Mul(torch.FromSlice(g)).Sum().Backward()
				})
				opt.Step(tc.LRs[i])
				opt.ZeroGrad()
			}
			got := p.Float64s()
			for i := range got {
				if math.Abs(got[i]-tc.Final[i]) > 1e-12*(1+math.Abs(tc.Final[i])) {
					t.Fatalf("param %d = %.15g, torch.optim gives %.15g", i, got[i], tc.Final[i])
				}
			}
		})
	}
}

// Saving and restoring optimizer state continues the trajectory exactly (resume).
func TestOptimizerStateRoundTrip(t *testing.T) {
	for _, cfg := range []OptimConfig{
		{Name: "adamw", LR: 1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01},
		{Name: "sgd", LR: 1, Momentum: 0.9, Nesterov: true},
	} {
		run := func(p *torch.Tensor, opt Optimizer, from, to int) {
			for i := from; i < to; i++ {
				torch.WithScope(func() {
					p.Mul(torch.FromSlice([]float64{1, float64(i), -2})).Sum().Backward()
				})
				opt.Step(0.05)
				opt.ZeroGrad()
			}
		}
		newParam := func() *torch.Tensor {
			p := torch.FromSlice([]float64{0.5, -1, 2}).SetRequiresGrad(true)
			torch.Persist(p)
			return p
		}
		ref := newParam()
		refOpt, _ := NewOptimizer(cfg, []torch.Named{{Name: "w", Tensor: ref}})
		run(ref, refOpt, 0, 8)

		a := newParam()
		optA, _ := NewOptimizer(cfg, []torch.Named{{Name: "w", Tensor: a}})
		run(a, optA, 0, 3)
		tensors, meta := optA.State()
		saved := map[string]*torch.Tensor{}
		for _, n := range tensors {
			c := n.Tensor.Clone()
			torch.Persist(c)
			saved[n.Name] = c
		}
		b := newParam()
		torch.NoGrad(func() { b.CopyFrom(a) })
		optB, _ := NewOptimizer(cfg, []torch.Named{{Name: "w", Tensor: b}})
		if err := optB.LoadState(saved, meta); err != nil {
			t.Fatal(err)
		}
		run(b, optB, 3, 8)
		got, want := b.Float64s(), ref.Float64s()
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: resumed param %v, uninterrupted %v", cfg.Name, got, want)
			}
		}
		if err := optB.LoadState(saved, map[string]string{"optimizer": "other"}); err == nil {
			t.Fatalf("%s: state of another optimizer accepted", cfg.Name)
		}
	}
}

func TestOptimizerConfigErrors(t *testing.T) {
	bad := []struct {
		cfg  OptimConfig
		want string
	}{
		{OptimConfig{Name: "adam", LR: 1}, "optimizer.name"},
		{OptimConfig{Name: "sgd", LR: 0}, "optimizer.lr"},
		{OptimConfig{Name: "sgd", LR: 1, Nesterov: true}, "nesterov"},
		{OptimConfig{Name: "adamw", LR: 1, Beta1: 1, Beta2: 0.9, Eps: 1e-8}, "betas"},
		{OptimConfig{Name: "adamw", LR: 1, Beta1: 0.9, Beta2: 0.9, Eps: 1e-8, WeightDecay: -1}, "weight_decay"},
	}
	for _, b := range bad {
		if err := b.cfg.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: got %v, want an error naming %s", b.cfg, err, b.want)
		}
	}
}

func TestSchedules(t *testing.T) {
	cos := Schedule{Kind: "cosine", WarmupSteps: 10}
	if err := cos.Validate(110); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		s         Schedule
		step, tot int
		want      float64
	}{
		{cos, 0, 110, 0.1},  // warm-up starts at base/warmup
		{cos, 9, 110, 1},    // and reaches base
		{cos, 10, 110, 1},   // cosine starts at base
		{cos, 60, 110, 0.5}, // half-way
		{cos, 110, 110, 0},  // ends at min_lr
		{Schedule{Kind: "cosine", MinLR: 0.1}, 50, 100, 0.55},
		{Schedule{Kind: "step", StepEvery: 30, Gamma: 0.1}, 29, 100, 1},
		{Schedule{Kind: "step", StepEvery: 30, Gamma: 0.1}, 65, 100, 0.01},
		{Schedule{Kind: "constant"}, 65, 100, 1},
	}
	for _, c := range checks {
		if got := c.s.LR(1, c.step, c.tot); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%+v step %d/%d: lr %v, want %v", c.s, c.step, c.tot, got, c.want)
		}
	}
	if err := (Schedule{Kind: "linear"}).Validate(10); err == nil {
		t.Error("unknown schedule accepted")
	}
	if err := (Schedule{Kind: "cosine", WarmupSteps: 20}).Validate(10); err == nil {
		t.Error("warm-up longer than the run accepted")
	}
}

func TestClipGradNorm(t *testing.T) {
	a := torch.FromSlice([]float64{0, 0}).SetRequiresGrad(true)
	b := torch.FromSlice([]float64{0}).SetRequiresGrad(true)
	torch.Persist(a, b)
	params := []torch.Named{{Name: "a", Tensor: a}, {Name: "b", Tensor: b}}
	torch.WithScope(func() {
		a.Mul(torch.FromSlice([]float64{3, 0})).Sum().Add(b.MulScalar(4).Sum()).Backward()
	})
	if n := ClipGradNorm(params, 1); math.Abs(n-5) > 1e-12 {
		t.Fatalf("norm before clipping %v, want 5", n)
	}
	torch.WithScope(func() {
		ga, gb := a.Grad().Float64s(), b.Grad().Float64s()
		if math.Abs(ga[0]-0.6) > 1e-6 || math.Abs(gb[0]-0.8) > 1e-6 {
			t.Fatalf("clipped grads %v %v, want 0.6, 0.8", ga, gb)
		}
	})
}

// Encoders carry torchvision's state names and shapes (tools/reference/gen_nn_fixtures.py), so
// exported weights load into torchvision.models.resnet* with strict=True.
func TestEncoderStateMatchesTorchvision(t *testing.T) {
	raw, err := os.ReadFile("testdata/torchvision_resnet_state.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]map[string][]int64
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for key, shapes := range want {
		arch, stem, _ := strings.Cut(key, "_")
		enc, err := NewEncoder(EncoderConfig{Arch: arch, Stem: stem, Width: 1, InChannels: 3})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]int64{}
		for _, n := range append(enc.Parameters(), enc.Buffers()...) {
			got[n.Name] = n.Tensor.Shape()
		}
		if len(got) != len(shapes) {
			t.Errorf("%s: %d state entries, torchvision has %d", key, len(got), len(shapes))
		}
		for name, shape := range shapes {
			g, ok := got[name]
			if !ok {
				t.Errorf("%s: missing %s", key, name)
				continue
			}
			if !slices.Equal(g, shape) {
				t.Errorf("%s: %s has shape %v, torchvision %v", key, name, g, shape)
			}
		}
		if wantDim := map[string]int64{"resnet18": 512, "resnet34": 512, "resnet50": 2048}[arch]; enc.OutDim != wantDim {
			t.Errorf("%s: output dimension %d, want %d", key, enc.OutDim, wantDim)
		}
		enc.Free()
	}
}

func TestEncoderForwardShapesAndErrors(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{Arch: "resnet18", Stem: "cifar", Width: 0.125, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if enc.OutDim != 64 {
		t.Fatalf("width 1/8 output dim %d, want 64", enc.OutDim)
	}
	torch.WithScope(func() {
		y := enc.Forward(torch.Randn([]int64{3, 1, 28, 28}, torch.Float32, torch.CPU))
		if s := y.Shape(); s[0] != 3 || s[1] != 64 {
			t.Fatalf("output shape %v", s)
		}
		err := torch.Catch(func() { enc.Forward(torch.Randn([]int64{3, 3, 28, 28}, torch.Float32, torch.CPU)) })
		if err == nil || !strings.Contains(err.Error(), "channels") {
			t.Fatalf("wrong channel count: %v", err)
		}
	})
	for _, c := range []EncoderConfig{
		{Arch: "resnet19", Stem: "cifar", Width: 1, InChannels: 3},
		{Arch: "resnet18", Stem: "tiny", Width: 1, InChannels: 3},
		{Arch: "resnet18", Stem: "cifar", Width: 0, InChannels: 3},
		{Arch: "resnet18", Stem: "cifar", Width: 1, InChannels: 4},
	} {
		if _, err := NewEncoder(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func rssBytes(t *testing.T) int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("SKIPPED: resident memory needs /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(raw))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// settleGC runs the GC until finalizers stop releasing tensors left over from earlier tests.
func settleGC() {
	prev := int64(-1)
	for i := 0; i < 50; i++ {
		runtime.GC()
		time.Sleep(20 * time.Millisecond) // finalizers run on their own goroutine
		if n := torch.LiveTensors(); n == prev {
			return
		} else {
			prev = n
		}
	}
}

// A long training loop holds resident memory flat: every step's tensors are freed by its scope.
func TestTrainingLoopMemoryIsFlat(t *testing.T) {
	const steps = 10000
	mlp := torch.NewMLP(32, 64, 8, true)
	head := torch.NewLinear(8, 4, true)
	params := append(Prefixed("mlp", mlp.Parameters()), Prefixed("head", head.Parameters())...)
	opt, err := NewOptimizer(OptimConfig{Name: "adamw", LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}, params)
	if err != nil {
		t.Fatal(err)
	}
	torch.ManualSeed(1)
	settleGC() // release what earlier tests left to the GC
	live0 := torch.LiveTensors()
	var warm int64
	for step := 0; step < steps; step++ {
		torch.WithScope(func() {
			x := torch.Randn([]int64{16, 32}, torch.Float32, torch.CPU)
			y := torch.Randint(0, 4, []int64{16}, torch.Int64, torch.CPU)
			logits := head.Forward(mlp.Forward(x).Relu())
			loss := torch.CrossEntropy(logits, y, torch.ReduceMean, 0)
			loss.Backward()
			ClipGradNorm(params, 5)
			opt.Step(1e-3)
			opt.ZeroGrad()
		})
		if step == 1000 {
			settleGC()
			warm = rssBytes(t)
		}
	}
	settleGC()
	end := rssBytes(t)
	growth := float64(end-warm) / float64(warm)
	t.Logf("RSS after warm-up %.1f MiB, after %d steps %.1f MiB (%+.2f%%)", float64(warm)/(1<<20), steps, float64(end)/(1<<20), 100*growth)
	if growth > 0.05 {
		t.Fatalf("resident memory grew %.1f%% over the loop", 100*growth)
	}
	// the optimizer holds two moments per parameter; nothing else survives the steps
	if live := torch.LiveTensors() - live0; live != int64(2*len(params)) {
		t.Fatalf("%d tensors alive after the loop, want %d optimizer moments", live, 2*len(params))
	}
	runtime.KeepAlive(opt)
	runtime.KeepAlive(params)
}
