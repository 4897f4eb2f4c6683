package train

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/npy"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// torchvisionResNet18 saves a randomly initialised torchvision ResNet-18 (BatchNorm statistics moved
// by a few training-mode passes) as resnet18.safetensors with its whole state_dict, fc included, as
// the README's conversion snippet does; and its eval-mode features (fc = Identity) of x.npy as
// want.npy. Written with struct and json alone: Debian packages no safetensors module.
const torchvisionResNet18 = `
import json, struct, sys
import numpy as np, torch, torchvision
d = sys.argv[1]
torch.manual_seed(0)
m = torchvision.models.resnet18()
m.train()
with torch.no_grad():
    for _ in range(3):
        m(torch.randn(8, 3, 64, 64) * 2 + 0.5)
state = m.state_dict()
header, blobs, off = {}, [], 0
for name, t in state.items():
    a = t.detach().contiguous().numpy()
    dt = {"float32": "F32", "int64": "I64"}[str(a.dtype)]
    b = a.tobytes()
    header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(d + "/resnet18.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
m.fc = torch.nn.Identity()
m.eval()
x = torch.randn(4, 3, 64, 64)
with torch.no_grad():
    np.save(d + "/x.npy", x.numpy())
    np.save(d + "/want.npy", m(x).numpy())
`

func readNpyTensor(t *testing.T, path string) *torch.Tensor {
	t.Helper()
	a, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	shape := make([]int64, len(a.Shape))
	for i, s := range a.Shape {
		shape[i] = int64(s)
	}
	return torch.FromSlice(v, shape...)
}

// model.init loads a torchvision checkpoint: the features match torchvision's on the same images, and
// every partial load is one the configuration asks for.
func TestInitFromTorchvisionWeights(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, torchvision, numpy").Run(); err != nil {
		t.Skipf("SKIPPED: needs %s with torch, torchvision and numpy (apt-get install python3-torchvision; `make test` does): %v", py, err)
	}
	dir := t.TempDir()
	if out, err := exec.Command(py, "-c", torchvisionResNet18, dir).CombinedOutput(); err != nil {
		t.Fatalf("torchvision export: %v\n%s", err, out)
	}
	weights := filepath.Join(dir, "resnet18.safetensors")
	newEnc := func(channels int) *nn.Encoder {
		enc, err := nn.NewEncoder(nn.EncoderConfig{Arch: "resnet18", Stem: "imagenet", Width: 1, InChannels: channels})
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	enc := newEnc(3)
	defer enc.Free()
	// torchvision's fc is the ImageNet classifier: loading it into an encoder must be asked for
	err := loadInit(enc, ModelConfig{Init: weights})
	if err == nil || !strings.Contains(err.Error(), "fc.weight") {
		t.Fatalf("a checkpoint with fc loaded without init_skip: %v", err)
	}
	if err := loadInit(enc, ModelConfig{Init: weights, InitSkip: []string{"fc."}}); err != nil {
		t.Fatal(err)
	}
	enc.SetTrain(false)
	torch.WithScope(func() {
		x, want := readNpyTensor(t, filepath.Join(dir, "x.npy")), readNpyTensor(t, filepath.Join(dir, "want.npy"))
		var got *torch.Tensor
		torch.NoGrad(func() { got = enc.Forward(x) })
		rel := got.Sub(want).Abs().Max().Item() / want.Abs().Max().Item()
		t.Logf("features vs torchvision: max relative difference %.2g", rel)
		if rel > 1e-4 {
			t.Errorf("features differ from torchvision's by %.3g (relative)", rel)
		}
	})
	// a 1-channel first conv cannot take the RGB kernel: an error naming it, unless skipped
	gray := newEnc(1)
	defer gray.Free()
	err = loadInit(gray, ModelConfig{Init: weights, InitSkip: []string{"fc."}})
	if err == nil || !strings.Contains(err.Error(), "conv1.weight: saved [64 3 7 7], model [64 1 7 7]") {
		t.Fatalf("1-channel encoder: %v, want a mismatch naming conv1.weight", err)
	}
	if err := loadInit(gray, ModelConfig{Init: weights, InitSkip: []string{"fc.", "conv1.weight"}}); err != nil {
		t.Fatal(err)
	}
	err = loadInit(gray, ModelConfig{Init: weights, InitSkip: []string{"fc.", "conv1.weight", "layer9."}})
	if err == nil || !strings.Contains(err.Error(), "layer9.") {
		t.Fatalf("a skip entry matching nothing: %v", err)
	}
}

// A two-backbone method starts both backbones from model.init: every tensor of each equals the file's.
func TestInitLoadsBothBackbones(t *testing.T) {
	cfg := Default()
	cfg.Method.Name = "supcon-2b"
	cfg.Model.Width = 0.0625
	shape := Shape{C: 3, H: 32, W: 32, CoarseClasses: 2}
	src, err := NewModel(cfg, shape)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Free()
	weights := filepath.Join(t.TempDir(), "init.safetensors")
	if err := nn.SaveState(weights, append(src.Encoder.Parameters(), src.Encoder.Buffers()...), nil); err != nil {
		t.Fatal(err)
	}
	cfg.Model.Init = weights
	m, err := NewModel(cfg, shape)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if err := initModel(m, cfg.Model); err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{}
	for _, n := range src.Encoder.Parameters() {
		want[n.Name] = n.Tensor.Float64s()
	}
	for b, enc := range []*nn.Encoder{m.Encoder, m.EncoderB} {
		for _, n := range enc.Parameters() {
			if got := n.Tensor.Float64s(); !slices.Equal(got, want[n.Name]) {
				t.Fatalf("backbone %d, %s: not the file's values", b, n.Name)
			}
		}
	}
}
