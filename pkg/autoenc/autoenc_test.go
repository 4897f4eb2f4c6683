package autoenc

import (
	"os"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func TestMain(m *testing.M) {
	torch.SetNumThreads(1)
	os.Exit(m.Run())
}

// At d = 256 and full width the decoder has the reference's size (METHOD.md: about 8.6M parameters).
func TestDecoderSizeMatchesReference(t *testing.T) {
	d, err := New(Config{Width: 1}, 256, 3, 32, 32, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free()
	n := nn.CountParams(d.Parameters())
	if n < 8_500_000 || n > 8_700_000 {
		t.Fatalf("decoder has %d parameters, want about 8.6M", n)
	}
}

func TestDecoderOutputSizes(t *testing.T) {
	for _, s := range [][3]int64{{1, 28, 28}, {3, 32, 32}, {3, 64, 64}} {
		d, err := New(Config{Width: 0.125}, 16, s[0], s[1], s[2], 0)
		if err != nil {
			t.Fatal(err)
		}
		torch.WithScope(func() {
			y := d.Forward(torch.Randn([]int64{2, 16}, torch.Float32, torch.CPU), nil)
			if got := y.Shape(); got[0] != 2 || got[1] != s[0] || got[2] != s[1] || got[3] != s[2] {
				t.Fatalf("output %v, want [2 %d %d %d]", got, s[0], s[1], s[2])
			}
		})
		d.Free()
	}
}

func TestConditionalDecoderUsesLabels(t *testing.T) {
	d, err := New(Config{Width: 0.125, Conditional: true, ClassEmbDim: 8}, 16, 3, 32, 32, 4)
	if err != nil {
		t.Fatal(err)
	}
	d.SetTrain(false)
	torch.WithScope(func() {
		h := torch.Randn([]int64{1, 16}, torch.Float32, torch.CPU)
		a := d.Forward(h, torch.FromSlice([]int64{0}))
		b := d.Forward(h, torch.FromSlice([]int64{3}))
		if a.Sub(b).Abs().Max().Item() == 0 {
			t.Fatal("the label does not change the reconstruction")
		}
		if err := torch.Catch(func() { d.Forward(h, nil) }); err == nil || !strings.Contains(err.Error(), "labels") {
			t.Fatalf("missing labels: %v", err)
		}
	})
	if len(d.Parameters()) == len(mustNew(t, Config{Width: 0.125}).Parameters()) {
		t.Fatal("class embedding parameters missing")
	}
}

func mustNew(t *testing.T, c Config) *Decoder {
	d, err := New(c, 16, 3, 32, 32, 4)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Training the decoder alone on a fixed batch drives the reconstruction error down, and the gradient
// reaches the code (the encoder side).
func TestReconstructionLossTrains(t *testing.T) {
	torch.ManualSeed(0)
	d := mustNew(t, Config{Width: 0.125})
	opt, _ := nn.NewOptimizer(nn.OptimConfig{Name: "adamw", LR: 3e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, d.Parameters())
	code := torch.Randn([]int64{4, 16}, torch.Float32, torch.CPU).SetRequiresGrad(true)
	target := torch.Randn([]int64{4, 3, 32, 32}, torch.Float32, torch.CPU)
	torch.Persist(code, target)
	var first, last float64
	for step := 0; step < 60; step++ {
		torch.WithScope(func() {
			loss := d.Loss(code, nil, target)
			loss.Backward()
			if step == 0 {
				first = loss.Item()
				if g := code.Grad(); g == nil || g.Abs().Sum().Item() == 0 {
					t.Fatal("no gradient reaches the code")
				}
			}
			last = loss.Item()
			opt.Step(3e-3)
			opt.ZeroGrad()
		})
	}
	if !(last < 0.5*first) {
		t.Fatalf("reconstruction error %v -> %v: did not halve", first, last)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(Config{Width: 0}, 16, 3, 32, 32, 0); err == nil {
		t.Error("width 0 accepted")
	}
	if _, err := New(Config{Width: 1, Conditional: true, ClassEmbDim: 8}, 16, 3, 32, 32, 0); err == nil {
		t.Error("conditional decoder without classes accepted")
	}
	if _, err := New(Config{Width: 1}, 0, 3, 32, 32, 0); err == nil {
		t.Error("zero input dimension accepted")
	}
}
