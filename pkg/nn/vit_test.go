package nn

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// The fixtures of testdata/gen_vit.py (regenerate: cd pkg/nn && /usr/bin/python3 testdata/gen_vit.py).
var vitFixtures = map[string]torch.ViTSpec{
	"reference": {ImageH: 16, ImageW: 16, InChannels: 3, Patch: 4, Dim: 32, Depth: 2, Heads: 4, MLPDim: 64, EmbedNorm: true},
	"standard":  {ImageH: 12, ImageW: 8, InChannels: 1, Patch: 4, Dim: 32, Depth: 2, Heads: 4, MLPDim: 64, QKVBias: true, AttnProj: true},
}

// Weights of an independent PyTorch ViT load with strict=True and give the same eval-mode features.
func TestViTMatchesPyTorch(t *testing.T) {
	for flavour, spec := range vitFixtures {
		t.Run(flavour, func(t *testing.T) {
			m, dim := torch.NewViT(spec)
			defer m.Free()
			if dim != spec.Dim {
				t.Fatalf("output dimension %d, want %d", dim, spec.Dim)
			}
			saved, _, err := ReadState("testdata/vit_" + flavour + ".safetensors")
			if err != nil {
				t.Fatal(err)
			}
			defer FreeState(saved)
			params := m.Parameters()
			defer freeNamed(params)
			if err := LoadInto(params, saved, true); err != nil {
				t.Fatal(err)
			}
			if n := len(m.Buffers()); n != 0 {
				t.Fatalf("%d buffers, want none", n)
			}
			io, _, err := ReadState("testdata/vit_" + flavour + "_io.safetensors")
			if err != nil {
				t.Fatal(err)
			}
			defer FreeState(io)
			m.SetTrain(false)
			torch.WithScope(func() {
				var y *torch.Tensor
				torch.NoGrad(func() { y = m.Forward(io["x"]) })
				if !slices.Equal(y.Shape(), io["want"].Shape()) {
					t.Fatalf("output shape %v, want %v", y.Shape(), io["want"].Shape())
				}
				d := y.Sub(io["want"]).Abs().Max().Item()
				t.Logf("max |ours - pytorch| = %.3g", d)
				if d > 1e-5 {
					t.Fatalf("output differs from the PyTorch reference by %g", d)
				}
			})
		})
	}
}

// Backward of a random weighting of the output reaches every parameter with finite, non-zero
// gradients; dropout acts in training mode only. (Not sum(output): after the final LayerNorm
// (weight 1, bias 0 at init) each row's features sum to 0, so that gradient is zero up to rounding.)
func TestViTGradientsAndDropout(t *testing.T) {
	for flavour, spec := range vitFixtures {
		t.Run(flavour, func(t *testing.T) {
			spec.Dropout = 0.2
			torch.ManualSeed(11)
			m, _ := torch.NewViT(spec)
			defer m.Free()
			params := m.Parameters()
			defer freeNamed(params)
			torch.WithScope(func() {
				x := torch.Randn([]int64{3, spec.InChannels, spec.ImageH, spec.ImageW}, torch.Float32, torch.CPU)
				out := m.Forward(x)
				out.Mul(torch.Randn(out.Shape(), torch.Float32, torch.CPU)).Sum().Backward()
				for _, p := range params {
					g := p.Tensor.Grad()
					if !g.Defined() {
						t.Errorf("%s: no gradient", p.Name)
						continue
					}
					if !slices.Equal(g.Shape(), p.Tensor.Shape()) {
						t.Errorf("%s: gradient shape %v, parameter %v", p.Name, g.Shape(), p.Tensor.Shape())
					}
					if g.IsFinite().LogicalNot().Sum().Item() != 0 {
						t.Errorf("%s: non-finite gradient", p.Name)
					}
					if g.Abs().Max().Item() == 0 {
						t.Errorf("%s: zero gradient", p.Name)
					}
				}
				a, b := m.Forward(x), m.Forward(x)
				if a.Sub(b).Abs().Max().Item() == 0 {
					t.Errorf("training mode: two passes agree exactly; dropout is not active")
				}
				m.SetTrain(false)
				var c, d *torch.Tensor
				torch.NoGrad(func() { c, d = m.Forward(x), m.Forward(x) })
				if c.Sub(d).Abs().Max().Item() != 0 {
					t.Errorf("eval mode is not deterministic")
				}
			})
		})
	}
}

// freeNamed releases the handles Parameters returned now rather than at some later GC, so that
// tests counting live tensors see nothing of this file's.
func freeNamed(named []torch.Named) {
	for _, n := range named {
		n.Tensor.Free()
	}
}

// vitParams is the parameter count of the encoder's ViT flavour, from the architecture.
func vitParams(c, tokens, d, depth, mlp int64) int64 {
	embed := 16*c*d + d + 2*d // conv 4x4 + bias, LayerNorm
	block := 2*d + 3*d*d + 2*d + (d*mlp + mlp) + (mlp*d + d)
	return embed + d + tokens*d + depth*block + 2*d
}

// arch vit is the reference code's ViT: 4x4 patches, d 256, 7 blocks, 8 heads, MLP 512, CLS output.
func TestViTEncoderReferenceConfig(t *testing.T) {
	c := EncoderConfig{Arch: "vit", Stem: "cifar", Width: 1, InChannels: 3}
	enc, err := NewEncoder(c)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Free()
	if enc.OutDim != 256 {
		t.Fatalf("output dimension %d, want 256", enc.OutDim)
	}
	params := enc.Parameters()
	defer freeNamed(params)
	n := CountParams(params)
	t.Logf("reference ViT: %d parameters in %d tensors", n, len(params))
	if want := vitParams(3, 65, 256, 7, 512); n != want || n != 3_254_272 {
		t.Fatalf("%d parameters, want %d", n, want)
	}
	got := map[string][]int64{}
	for _, p := range params {
		got[p.Name] = p.Tensor.Shape()
	}
	want := map[string][]int64{
		"patch_embed.proj.weight": {256, 3, 4, 4}, "patch_embed.proj.bias": {256},
		"patch_embed.norm.weight": {256}, "patch_embed.norm.bias": {256},
		"cls_token": {1, 1, 256}, "pos_embed": {1, 65, 256}, "norm.weight": {256}, "norm.bias": {256},
	}
	for i := 0; i < 7; i++ {
		pre := fmt.Sprintf("blocks.%d.", i)
		for k, v := range map[string][]int64{
			"norm1.weight": {256}, "norm1.bias": {256}, "attn.qkv.weight": {768, 256},
			"norm2.weight": {256}, "norm2.bias": {256}, "mlp.fc1.weight": {512, 256}, "mlp.fc1.bias": {512},
			"mlp.fc2.weight": {256, 512}, "mlp.fc2.bias": {256},
		} {
			want[pre+k] = v
		}
	}
	var names []string
	for k := range got {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(got) != len(want) {
		t.Errorf("parameters %v, want %d of them", names, len(want))
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s: shape %v, want %v", k, got[k], v)
		}
	}
	torch.WithScope(func() {
		y := enc.Forward(torch.Randn([]int64{2, 3, 32, 32}, torch.Float32, torch.CPU))
		if s := y.Shape(); len(s) != 2 || s[0] != 2 || s[1] != 256 {
			t.Fatalf("output shape %v, want [2 256]", s)
		}
		if y.IsFinite().LogicalNot().Sum().Item() != 0 {
			t.Fatal("non-finite features")
		}
		err := torch.Catch(func() { enc.Forward(torch.Randn([]int64{2, 3, 28, 28}, torch.Float32, torch.CPU)) })
		if err == nil || !strings.Contains(err.Error(), "position embeddings") {
			t.Fatalf("wrong input size: %v", err)
		}
	})
}

func TestViTEncoderWidthImageSizeAndValidation(t *testing.T) {
	for _, tc := range []struct {
		width   float64
		dim     int64
		size    int
		channel int
	}{
		{0.125, 32, 28, 1}, {0.5, 128, 0, 3}, {0.3, 80, 16, 3}, {0.01, 8, 8, 1}, {1.5, 384, 12, 3},
	} {
		c := EncoderConfig{Arch: "vit", Width: tc.width, InChannels: tc.channel, ImageSize: tc.size, Dropout: 0.05}
		if got := c.ViTDim(); got != tc.dim {
			t.Errorf("width %v: d = %d, want %d", tc.width, got, tc.dim)
		}
		enc, err := NewEncoder(c)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		size := int64(c.ImageSizeOrDefault())
		tokens := (size/4)*(size/4) + 1
		params := enc.Parameters()
		if n, want := CountParams(params), vitParams(int64(tc.channel), tokens, tc.dim, 7, 2*tc.dim); n != want {
			t.Errorf("%+v: %d parameters, want %d", c, n, want)
		}
		freeNamed(params)
		if enc.OutDim != tc.dim {
			t.Errorf("%+v: output dimension %d", c, enc.OutDim)
		}
		enc.Free()
	}
	for _, c := range []EncoderConfig{
		{Arch: "vit", Stem: "tiny", Width: 1, InChannels: 3},
		{Arch: "vit", Stem: "cifar", Width: 1, InChannels: 3, ImageSize: 30},
		{Arch: "vit", Stem: "cifar", Width: 1, InChannels: 3, ImageSize: -4},
		{Arch: "vit", Stem: "cifar", Width: 1, InChannels: 3, Dropout: 1},
		{Arch: "vit", Stem: "cifar", Width: 0, InChannels: 3},
		{Arch: "resnet18", Stem: "cifar", Width: 1, InChannels: 3, Dropout: 0.1},
		{Arch: "resnet18", Stem: "", Width: 1, InChannels: 3},
	} {
		if _, err := NewEncoder(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	// the ResNets ignore image_size (they pool globally)
	if err := (EncoderConfig{Arch: "resnet18", Stem: "cifar", Width: 1, InChannels: 3, ImageSize: 30}).Validate(); err != nil {
		t.Errorf("resnet with image_size 30: %v", err)
	}
	for _, stem := range []string{"", "cifar", "imagenet"} {
		if err := (EncoderConfig{Arch: "vit", Stem: stem, Width: 1, InChannels: 3}).Validate(); err != nil {
			t.Errorf("vit with stem %q: %v", stem, err)
		}
	}
	if archs := strings.Join(Archs(), ","); !strings.Contains(archs, "vit") {
		t.Errorf("Archs() = %s lacks vit", archs)
	}
	// the C ABI rejects what Validate would, with a message
	err := torch.Catch(func() {
		torch.NewViT(torch.ViTSpec{ImageH: 32, ImageW: 32, InChannels: 3, Patch: 4, Dim: 30, Depth: 1, Heads: 8, MLPDim: 8})
	})
	if err == nil || !strings.Contains(err.Error(), "multiple of heads") {
		t.Errorf("dim 30 with 8 heads: %v", err)
	}
}
