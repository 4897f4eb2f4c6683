package torch_test

import (
	"slices"
	"testing"
	"time"

	"github.com/spreadtrain/spreadtrain/internal/cudatest"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// float32 kernels on CUDA (TF32 off, libtorch's default for matmul) against the CPU's
const cudaTol = 1e-5

func within(t *testing.T, name string, gpu, cpu *torch.Tensor, tol float64) {
	t.Helper()
	if !slices.Equal(gpu.Shape(), cpu.Shape()) {
		t.Fatalf("%s: shape %v on CUDA, %v on the CPU", name, gpu.Shape(), cpu.Shape())
	}
	if d := cudatest.MaxDiff(gpu, cpu); d > tol {
		t.Errorf("%s: CUDA differs from the CPU by %.3g (relative), want <= %.1g", name, d, tol)
	}
}

// Tensors round-trip through the GPU, ops there give the CPU's values, and the copy counter counts an
// upload (a host tensor, then a crossing) and a read-back.
func TestCUDATensors(t *testing.T) {
	dev := cudatest.Device(t)
	torch.WithScope(func() {
		before := torch.HostCopies()
		x := torch.FromSlice([]float32{1, -2, 3, 4, 5, -6}, 2, 3).On(dev)
		want := uint64(2) // from_data into host memory, then the crossing
		if dev == torch.CPU {
			want = 1 // the rehearsal: no crossing
		}
		if n := torch.HostCopies() - before; n != want {
			t.Errorf("FromSlice(...).On(%v) counted %d host copies, want %d", dev, n, want)
		}
		if x.Device() != dev {
			t.Fatalf("tensor on %v, want %v", x.Device(), dev)
		}
		if got := x.Float64s(); !slices.Equal(got, []float64{1, -2, 3, 4, 5, -6}) {
			t.Fatalf("round trip: %v", got)
		}
		torch.ManualSeed(1)
		a := torch.Randn([]int64{64, 32}, torch.Float32, torch.CPU)
		b := torch.Randn([]int64{32, 16}, torch.Float32, torch.CPU)
		ga, gb := a.On(dev), b.On(dev)
		within(t, "matmul", ga.Matmul(gb), a.Matmul(b), cudaTol)
		within(t, "softmax", ga.Softmax(1), a.Softmax(1), cudaTol)
		within(t, "sum", ga.Exp().Sum(), a.Exp().Sum(), cudaTol)
		within(t, "cross entropy", torch.CrossEntropy(ga.Matmul(gb), torch.FromSlice(make([]int64, 64)).On(dev), torch.ReduceMean, 0),
			torch.CrossEntropy(a.Matmul(b), torch.FromSlice(make([]int64, 64)), torch.ReduceMean, 0), cudaTol)
		within(t, "mse", torch.MSELoss(ga, ga.MulScalar(0.5), torch.ReduceMean), torch.MSELoss(a, a.MulScalar(0.5), torch.ReduceMean), cudaTol)
		// random draws on the device come from the device's generator, which a state replays
		st := torch.RNGState(dev)
		r1 := torch.Rand([]int64{8}, torch.Float32, dev).Float64s()
		torch.SetRNGState(dev, st)
		if r2 := torch.Rand([]int64{8}, torch.Float32, dev).Float64s(); !slices.Equal(r1, r2) {
			t.Errorf("CUDA generator state replay: %v then %v", r1, r2)
		}
	})
}

// bf16 autocast on CUDA: a matmul runs in bfloat16 and equals the product of the rounded inputs up
// to bf16 accumulation differences; float32 after the region.
func TestCUDAAutocastBF16(t *testing.T) {
	dev := cudatest.Device(t)
	torch.WithScope(func() {
		torch.ManualSeed(2)
		a, w := torch.Randn([]int64{64, 128}, torch.Float32, dev), torch.Randn([]int64{128, 32}, torch.Float32, dev).SetRequiresGrad(true)
		var got *torch.Tensor
		torch.Autocast(dev, torch.BFloat16, func() { got = a.Matmul(w) })
		if got.DType() != torch.BFloat16 {
			t.Fatalf("matmul under CUDA autocast: %v, want bfloat16", got.DType())
		}
		want := a.To(torch.BFloat16).To(torch.Float32).Matmul(w.Detach().To(torch.BFloat16).To(torch.Float32))
		within(t, "bf16 matmul", got, want, 1e-2)
		if d := a.Matmul(w).DType(); d != torch.Float32 {
			t.Fatalf("after the region: %v, want float32", d)
		}
		got.To(torch.Float32).Square().Sum().Backward()
		if g := w.Grad(); g == nil || g.DType() != torch.Float32 {
			t.Fatalf("gradient of a float32 weight: %v", g)
		}
	})
}

// ResNet (channels-last or not), ViT and the decoder forward and backward on CUDA give the CPU's
// outputs and gradients: the ViT (matmuls in float32) within float32 tolerance; the convolutional
// models within TF32's (libtorch's default lets cuDNN convolutions use TF32, a 10-bit mantissa, as
// PyTorch does and as the trainer runs).
func TestCUDAModelsMatchCPU(t *testing.T) {
	dev := cudatest.Device(t)
	type model struct {
		name         string
		build        func() *torch.Module
		channelsLast bool
		tol          float64
	}
	resnet := func() *torch.Module {
		m, _ := torch.NewResNet(torch.ResNetSpec{Layers: [4]int64{2, 2, 2, 2}, CIFARStem: true, Width: 16, InChannels: 3})
		return m
	}
	vit := func() *torch.Module {
		m, _ := torch.NewViT(torch.ViTSpec{ImageH: 32, ImageW: 32, InChannels: 3, Patch: 4, Dim: 64, Depth: 2, Heads: 4, MLPDim: 128, EmbedNorm: true})
		return m
	}
	decoder := func() *torch.Module { return torch.NewDecoder(64, 16, 3, 32, 32) }
	for _, mc := range []model{{"resnet18", resnet, false, 1e-2}, {"resnet18 channels-last", resnet, true, 1e-2}, {"vit", vit, false, 1e-4}, {"decoder", decoder, false, 1e-2}} {
		torch.WithScope(func() {
			torch.ManualSeed(3)
			cpu := mc.build()
			defer cpu.Free()
			gpu := mc.build()
			defer gpu.Free()
			torch.NoGrad(func() {
				for i, p := range cpu.Parameters() { // the same weights on both
					gpu.Parameters()[i].Tensor.CopyFrom(p.Tensor)
				}
			})
			gpu.ToDevice(dev)
			if mc.channelsLast {
				gpu.ChannelsLast()
			}
			cpu.SetTrain(true)
			gpu.SetTrain(true)
			shape := []int64{8, 3, 32, 32}
			if mc.name == "decoder" {
				shape = []int64{8, 64}
			}
			x := torch.Randn(shape, torch.Float32, torch.CPU)
			gx := x.On(dev)
			if mc.channelsLast {
				gx = gx.ChannelsLast()
			}
			yc, yg := cpu.Forward(x), gpu.Forward(gx)
			within(t, mc.name+" forward", yg, yc, mc.tol)
			yc.Square().Mean().Backward()
			yg.Square().Mean().Backward()
			for i, p := range cpu.Parameters() {
				within(t, mc.name+" grad "+p.Name, gpu.Parameters()[i].Tensor.Grad(), p.Tensor.Grad(), 10*mc.tol)
			}
		})
	}
}

// The multi-tensor AdamW on CUDA takes the per-tensor update's step on the CPU.
func TestCUDAAdamWForeachMatchesCPU(t *testing.T) {
	dev := cudatest.Device(t)
	torch.WithScope(func() {
		torch.ManualSeed(4)
		var ps, gs, ms, vs []*torch.Tensor
		var gps, ggs, gms, gvs []*torch.Tensor
		for _, n := range []int64{7, 64, 300} {
			p, g := torch.Randn([]int64{n}, torch.Float32, torch.CPU), torch.Randn([]int64{n}, torch.Float32, torch.CPU)
			m, v := torch.Randn([]int64{n}, torch.Float32, torch.CPU).MulScalar(0.1), torch.Rand([]int64{n}, torch.Float32, torch.CPU).MulScalar(0.01)
			ps, gs, ms, vs = append(ps, p), append(gs, g), append(ms, m), append(vs, v)
			gps, ggs, gms, gvs = append(gps, p.On(dev).Clone()), append(ggs, g.On(dev)), append(gms, m.On(dev).Clone()), append(gvs, v.On(dev).Clone())
		}
		for step := int64(1); step <= 3; step++ {
			for i := range ps {
				torch.AdamWUpdate(ps[i], gs[i], ms[i], vs[i], 1e-2, 0.9, 0.999, 1e-8, 0.05, step)
			}
			torch.AdamWForeach(gps, ggs, gms, gvs, 1e-2, 0.9, 0.999, 1e-8, 0.05, step)
		}
		for i := range ps {
			within(t, "adamw param", gps[i], ps[i], cudaTol)
			within(t, "adamw exp_avg_sq", gvs[i], vs[i], cudaTol)
		}
	})
}

// A process group of world size 1 through the shim's c10d path (TCPStore rendezvous, process group,
// bucketed all-reduce and broadcast, all-gather with gradient, barrier): NCCL on CUDA. The trainer's
// dist.Init skips the group for one process, so this is the one place a single GPU exercises NCCL.
func TestCUDANCCLWorldSizeOne(t *testing.T) {
	dev := cudatest.Device(t)
	store, err := torch.NewTCPStore("127.0.0.1", 0, true, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	backend := "nccl"
	if dev == torch.CPU {
		backend = "gloo" // the rehearsal
	}
	pg, err := torch.NewProcessGroup(store, backend, 0, 1, 30*time.Second, "127.0.0.1", dev.Index)
	if err != nil {
		t.Fatalf("%s process group (backends in this shim: %v): %v", backend, torch.DistBackends(), err)
	}
	defer pg.Close()
	torch.WithScope(func() {
		x := torch.FromSlice([]float32{1, 2, 3, 4}).On(dev)
		y := torch.FromSlice([]float32{5, 6}).On(dev)
		if _, err := pg.AllReduce([]*torch.Tensor{x, y}, true, 8); err != nil { // 8 bytes: two buckets
			t.Fatal(err)
		}
		if err := pg.Broadcast([]*torch.Tensor{x, y}, 0, 1<<20); err != nil {
			t.Fatal(err)
		}
		if got := append(x.Float64s(), y.Float64s()...); !slices.Equal(got, []float64{1, 2, 3, 4, 5, 6}) {
			t.Errorf("all-reduce/broadcast on one rank changed the values: %v", got)
		}
		z := torch.Randn([]int64{3, 2}, torch.Float32, dev).SetRequiresGrad(true)
		g, err := pg.AllGatherWithGrad(z)
		if err != nil {
			t.Fatal(err)
		}
		within(t, "all-gather", g, z, 0)
		g.Sum().Backward()
		within(t, "all-gather gradient", z.Grad(), torch.Ones([]int64{3, 2}, torch.Float32, dev), 0)
		if err := pg.Barrier(); err != nil {
			t.Fatal(err)
		}
	})
}
