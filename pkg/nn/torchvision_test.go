package nn

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/npy"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// reference runs a Python reference script (one built on pyReadSafetensors) with the CPU kernels this
// process uses: SPREADTRAIN_MKLDNN=0 where torch's start-up check switched oneDNN off, whose
// convolution gradients are wrong there (Debian 13's libtorch 2.6 on AVX-512) in Python too.
func reference(py string, args ...string) *exec.Cmd {
	cmd := exec.Command(py, args...)
	on := "1"
	if !torch.MKLDNNEnabled() {
		on = "0"
	}
	cmd.Env = append(os.Environ(), "SPREADTRAIN_MKLDNN="+on)
	return cmd
}

// python3WithTorchvision returns Debian's python3 when it can import torch and torchvision
// (`make test` installs them), else skips loudly.
func python3WithTorchvision(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, torchvision, numpy").Run(); err != nil {
		t.Skipf("SKIPPED: needs %s with torch, torchvision and numpy (apt-get install python3-torchvision; `make test` does): %v", py, err)
	}
	return py
}

// pyReadSafetensors defines read_safetensors(path) -> {name: tensor} in Python with struct, json
// and numpy alone (the safetensors package is not packaged for Debian).
const pyReadSafetensors = `
import json, os, struct, sys
import numpy as np, torch, torchvision
# the CPU kernels the Go side uses: oneDNN off where its start-up check switched it off (reference())
torch.backends.mkldnn.enabled = os.environ.get("SPREADTRAIN_MKLDNN", "1") == "1"
def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64}
    state = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        state[name] = torch.from_numpy(arr.copy())
    return state
`

// loadInTorchvision loads weights.safetensors into torchvision's ResNet (stem swapped for the CIFAR
// variant, fc dropped) with strict=True and compares its eval-mode output on x.npy with want.npy.
const loadInTorchvision = pyReadSafetensors + `
arch, stem, d = sys.argv[1], sys.argv[2], sys.argv[3]
state = read_safetensors(d + "/weights.safetensors")
m = getattr(torchvision.models, arch)()
if stem == "cifar":
    m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = torch.nn.Identity()
m.fc = torch.nn.Identity()
m.load_state_dict(state, strict=True)
m.eval()
x = torch.from_numpy(np.load(d + "/x.npy"))
with torch.no_grad():
    y = m(x).numpy()
want = np.load(d + "/want.npy")
err = np.abs(y - want).max() / (np.abs(want).max() + 1e-12)
print("max relative difference", err)
sys.exit(0 if err < 1e-4 else 1)
`

// Weights written by SaveState load into torchvision with strict=True and compute the same features.
func TestExportedWeightsLoadIntoTorchvision(t *testing.T) {
	py := python3WithTorchvision(t)
	for _, c := range []EncoderConfig{
		{Arch: "resnet18", Stem: "cifar", Width: 1, InChannels: 3},
		{Arch: "resnet50", Stem: "imagenet", Width: 1, InChannels: 3},
	} {
		t.Run(c.Arch+"_"+c.Stem, func(t *testing.T) {
			enc, err := NewEncoder(c)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Free()
			dir := t.TempDir()
			torch.ManualSeed(3)
			size := int64(32)
			if c.Stem == "imagenet" {
				size = 64
			}
			torch.WithScope(func() {
				// a few training-mode passes give the BatchNorm running statistics non-trivial values
				for i := 0; i < 3; i++ {
					enc.Forward(torch.Randn([]int64{8, 3, size, size}, torch.Float32, torch.CPU).MulScalar(2).AddScalar(0.5))
				}
				enc.SetTrain(false)
				x := torch.Randn([]int64{4, 3, size, size}, torch.Float32, torch.CPU)
				var y *torch.Tensor
				torch.NoGrad(func() { y = enc.Forward(x) })
				writeNpy(t, filepath.Join(dir, "x.npy"), x)
				writeNpy(t, filepath.Join(dir, "want.npy"), y)
			})
			if err := SaveState(filepath.Join(dir, "weights.safetensors"), append(enc.Parameters(), enc.Buffers()...), map[string]string{"arch": c.Arch}); err != nil {
				t.Fatal(err)
			}
			out, err := reference(py, "-c", loadInTorchvision, c.Arch, c.Stem, dir).CombinedOutput()
			t.Logf("torchvision: %s", strings.TrimSpace(string(out)))
			if err != nil {
				t.Fatalf("torchvision rejected the weights or computed other features: %v", err)
			}
		})
	}
}

func writeNpy(t *testing.T, path string, x *torch.Tensor) {
	t.Helper()
	shape := x.Shape()
	ishape := make([]int, len(shape))
	for i, s := range shape {
		ishape[i] = int(s)
	}
	if err := npy.WriteFile(path, npy.FromFloat32(x.Float32s(), ishape...)); err != nil {
		t.Fatal(err)
	}
}

// State round-trips through safetensors, and LoadInto reports what does not fit.
func TestStateRoundTripAndMismatch(t *testing.T) {
	a, _ := NewEncoder(EncoderConfig{Arch: "resnet18", Stem: "cifar", Width: 0.125, InChannels: 3})
	b, _ := NewEncoder(EncoderConfig{Arch: "resnet18", Stem: "cifar", Width: 0.125, InChannels: 3})
	path := filepath.Join(t.TempDir(), "s.safetensors")
	named := append(a.Parameters(), a.Buffers()...)
	if err := SaveState(path, named, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	saved, meta, err := ReadState(path)
	if err != nil {
		t.Fatal(err)
	}
	defer FreeState(saved)
	if meta["k"] != "v" {
		t.Fatalf("metadata %v", meta)
	}
	bNamed := append(b.Parameters(), b.Buffers()...)
	if err := LoadInto(bNamed, saved, true); err != nil {
		t.Fatal(err)
	}
	torch.WithScope(func() {
		for i := range named {
			if d := named[i].Tensor.To(torch.Float64).Sub(bNamed[i].Tensor.To(torch.Float64)).Abs().Max().Item(); d != 0 {
				t.Fatalf("%s differs by %v after loading", named[i].Name, d)
			}
		}
	})
	wide, _ := NewEncoder(EncoderConfig{Arch: "resnet18", Stem: "cifar", Width: 0.25, InChannels: 3})
	if err := LoadInto(wide.Parameters(), saved, false); err == nil || !strings.Contains(err.Error(), "conv1.weight") {
		t.Fatalf("shape mismatch: %v", err)
	}
	if err := LoadInto(b.Parameters(), saved, true); err == nil || !strings.Contains(err.Error(), "unexpected") {
		t.Fatalf("strict load with extra tensors: %v", err)
	}
	os.WriteFile(path, []byte("not a safetensors file"), 0o644)
	if _, _, err := ReadState(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt file: %v", err)
	}
}
