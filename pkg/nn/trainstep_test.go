package nn

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/npy"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// trainInTorchvision loads weights.safetensors (encoder + "fc." head) into torchvision's ResNet-18
// with the CIFAR stem and prints the cross-entropy of each of 5 SGD steps on x.npy / y.npy.
const trainInTorchvision = pyReadSafetensors + `
torch.set_num_threads(1)
d = sys.argv[1]
state = read_safetensors(d + "/weights.safetensors")
m = torchvision.models.resnet18(num_classes=10)
m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
m.maxpool = torch.nn.Identity()
m.load_state_dict(state, strict=True)
m.train()
opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
x = torch.from_numpy(np.load(d + "/x.npy")); y = torch.from_numpy(np.load(d + "/y.npy"))
out = []
for step in range(5):
    loss = torch.nn.functional.cross_entropy(m(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
    out.append(loss.item())
print(" ".join("%.6f" % v for v in out))
`

// Five SGD steps of a CIFAR ResNet-18 on a fixed batch give the same losses as torchvision's model
// with the same weights: forward, backward, BatchNorm and the optimizer agree end to end.
func TestTrainingStepsMatchTorchvision(t *testing.T) {
	py := python3WithTorchvision(t)
	enc, err := NewEncoder(EncoderConfig{Arch: "resnet18", Stem: "cifar", Width: 1, InChannels: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Free()
	head := torch.NewLinear(enc.OutDim, 10, true)
	defer head.Free()
	dir := t.TempDir()
	torch.ManualSeed(5)
	x := torch.Randn([]int64{16, 3, 32, 32}, torch.Float32, torch.CPU)
	y := torch.Randint(0, 10, []int64{16}, torch.Int64, torch.CPU)
	torch.Persist(x, y)
	writeNpy(t, filepath.Join(dir, "x.npy"), x)
	if err := npyInt64(filepath.Join(dir, "y.npy"), y); err != nil {
		t.Fatal(err)
	}
	state := append(append(enc.Parameters(), enc.Buffers()...), Prefixed("fc", head.Parameters())...)
	if err := SaveState(filepath.Join(dir, "weights.safetensors"), state, nil); err != nil {
		t.Fatal(err)
	}
	params := append(enc.Parameters(), Prefixed("fc", head.Parameters())...)
	opt, _ := NewOptimizer(OptimConfig{Name: "sgd", LR: 0.05, Momentum: 0.9}, params)
	var ours []float64
	for step := 0; step < 5; step++ {
		torch.WithScope(func() {
			loss := torch.CrossEntropy(head.Forward(enc.Forward(x)), y, torch.ReduceMean, 0)
			loss.Backward()
			opt.Step(0.05)
			opt.ZeroGrad()
			ours = append(ours, loss.Item())
		})
	}
	out, err := reference(py, "-c", trainInTorchvision, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("torchvision: %v\n%s", err, out)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 5 {
		t.Fatalf("torchvision printed %q", out)
	}
	for i, f := range fields {
		want, _ := strconv.ParseFloat(f, 64)
		if d := ours[i] - want; d > 1e-3*(1+want) || d < -1e-3*(1+want) {
			t.Fatalf("step %d: loss %.6f, torchvision %.6f (all: ours %v, torchvision %v)", i, ours[i], want, ours, fields)
		}
	}
	t.Logf("losses: %s", fmt.Sprint(ours))
}

func npyInt64(path string, x *torch.Tensor) error {
	return npy.WriteFile(path, npy.FromInt64(x.Int64s()))
}
