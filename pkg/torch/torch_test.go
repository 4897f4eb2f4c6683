package torch

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	SetNumThreads(1)
	m.Run()
}

func near(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d %v", name, len(got), got, len(want), want)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s: element %d = %v, want %v (all: %v)", name, i, got[i], want[i], got)
		}
	}
}

func TestRoundTripEveryDType(t *testing.T) {
	WithScope(func() {
		f32 := FromSlice([]float32{1.5, -2, 3}, 3)
		if got := ToSlice[float32](f32); got[0] != 1.5 || got[1] != -2 || got[2] != 3 {
			t.Fatalf("float32 round trip: %v", got)
		}
		f64 := FromSlice([]float64{math.Pi, 2}, 2, 1)
		if s := f64.Shape(); len(s) != 2 || s[0] != 2 || s[1] != 1 || f64.DType() != Float64 {
			t.Fatalf("float64 shape/dtype: %v %v", s, f64.DType())
		}
		if got := ToSlice[float64](f64); got[0] != math.Pi {
			t.Fatalf("float64 round trip: %v", got)
		}
		i64 := FromSlice([]int64{-1, 1 << 40})
		if got := ToSlice[int64](i64); got[1] != 1<<40 {
			t.Fatalf("int64 round trip: %v", got)
		}
		i32 := FromSlice([]int32{7, -7})
		if got := i32.Int64s(); got[0] != 7 || got[1] != -7 {
			t.Fatalf("int32 round trip: %v", got)
		}
		u8 := FromSlice([]uint8{0, 255}, 1, 2)
		if got := ToSlice[uint8](u8); got[1] != 255 || u8.DType() != Uint8 {
			t.Fatalf("uint8 round trip: %v", got)
		}
		b := FromSlice([]bool{true, false, true})
		if got := ToSlice[bool](b); !got[0] || got[1] || !got[2] {
			t.Fatalf("bool round trip: %v", got)
		}
		if err := Catch(func() { ToSlice[float32](i64) }); err == nil || !strings.Contains(err.Error(), "int64") {
			t.Fatalf("dtype mismatch not reported: %v", err)
		}
		if err := Catch(func() { FromSlice([]float32{1, 2, 3}, 2, 2) }); err == nil {
			t.Fatal("shape/data mismatch not reported")
		}
		raw := FromBytes(f32.Bytes(), Float32, 3)
		near(t, "bytes", raw.Float64s(), []float64{1.5, -2, 3}, 0)
	})
}

func TestArithmeticAndReductions(t *testing.T) {
	WithScope(func() {
		a := FromSlice([]float64{1, 2, 3, 4}, 2, 2)
		b := FromSlice([]float64{0.5, -1, 2, 0}, 2, 2)
		near(t, "add", a.Add(b).Float64s(), []float64{1.5, 1, 5, 4}, 0)
		near(t, "sub", a.Sub(b).Float64s(), []float64{0.5, 3, 1, 4}, 0)
		near(t, "mul", a.Mul(b).Float64s(), []float64{0.5, -2, 6, 0}, 0)
		near(t, "div", a.Div(FromSlice([]float64{2, 4, 6, 8}, 2, 2)).Float64s(), []float64{0.5, 0.5, 0.5, 0.5}, 0)
		near(t, "matmul", a.Matmul(b).Float64s(), []float64{4.5, -1, 9.5, -3}, 1e-12)
		near(t, "mm", a.MM(a.T()).Float64s(), []float64{5, 11, 11, 25}, 1e-12)
		near(t, "rsub", a.RSub(1).Float64s(), []float64{0, -1, -2, -3}, 0)
		near(t, "rdiv", a.RDiv(12).Float64s(), []float64{12, 6, 4, 3}, 1e-12)
		near(t, "pow", a.PowScalar(2).Float64s(), []float64{1, 4, 9, 16}, 0)
		near(t, "exp-log", a.Exp().Log().Float64s(), []float64{1, 2, 3, 4}, 1e-12)
		near(t, "sum", []float64{a.Sum().Item()}, []float64{10}, 0)
		near(t, "sum dim0", a.SumDims(false, 0).Float64s(), []float64{4, 6}, 0)
		near(t, "mean dim1 keep", a.MeanDims(true, 1).Float64s(), []float64{1.5, 3.5}, 0)
		if s := a.MeanDims(true, 1).Shape(); s[0] != 2 || s[1] != 1 {
			t.Fatalf("keepdim shape %v", s)
		}
		near(t, "amax", a.AMax(false, 1).Float64s(), []float64{2, 4}, 0)
		near(t, "max", []float64{a.Max().Item(), a.Min().Item()}, []float64{4, 1}, 0)
		// logsumexp must stay finite where exp overflows
		big := FromSlice([]float64{1000, 1000})
		near(t, "logsumexp", big.LogSumExp(false, 0).Float64s(), []float64{1000 + math.Log(2)}, 1e-12)
		near(t, "argmax", FromSlice([]float64{3, 9, 1, 4, 0, 8}, 2, 3).Argmax(1, false).Float64s(), []float64{1, 2}, 0)
		near(t, "clamp", a.Clamp(1.5, 3.5).Float64s(), []float64{1.5, 2, 3, 3.5}, 0)
		near(t, "clampmax", a.ClampMax(2).Float64s(), []float64{1, 2, 2, 2}, 0)
		near(t, "norm", []float64{FromSlice([]float64{3, 4}).Norm(false).Item()}, []float64{5}, 1e-12)
		near(t, "var", []float64{FromSlice([]float64{1, 2, 3, 4}).Var(false).Item()}, []float64{5.0 / 3}, 1e-12)
		mask := a.GtScalar(2.5)
		near(t, "gt", mask.Float64s(), []float64{0, 0, 1, 1}, 0)
		near(t, "where", Where(mask, a, b).Float64s(), []float64{0.5, -1, 3, 4}, 0)
		near(t, "masked_fill", a.MaskedFill(mask, -9).Float64s(), []float64{1, 2, -9, -9}, 0)
		near(t, "masked_select", a.MaskedSelect(mask).Float64s(), []float64{3, 4}, 0)
		near(t, "all/any", []float64{mask.All(false).Float64s()[0], mask.Any(false).Float64s()[0]}, []float64{0, 1}, 0)
		near(t, "isfinite", FromSlice([]float64{1, math.Inf(1), math.NaN()}).IsFinite().Float64s(), []float64{1, 0, 0}, 0)
		near(t, "eye", Eye(2, Float64, CPU).Float64s(), []float64{1, 0, 0, 1}, 0)
		near(t, "arange", Arange(0, 5, 2, Int64, CPU).Float64s(), []float64{0, 2, 4}, 0)
	})
}

func TestShapesAndIndexing(t *testing.T) {
	WithScope(func() {
		x := Arange(0, 6, 1, Float64, CPU).Reshape(2, 3)
		near(t, "transpose", x.Transpose(0, 1).Contiguous().Float64s(), []float64{0, 3, 1, 4, 2, 5}, 0)
		near(t, "permute", x.Permute(1, 0).Contiguous().Float64s(), []float64{0, 3, 1, 4, 2, 5}, 0)
		near(t, "narrow", x.Narrow(1, 1, 2).Contiguous().Float64s(), []float64{1, 2, 4, 5}, 0)
		near(t, "select", x.Select(0, 1).Float64s(), []float64{3, 4, 5}, 0)
		idx := FromSlice([]int64{2, 0})
		near(t, "index_select", x.IndexSelect(1, idx).Float64s(), []float64{2, 0, 5, 3}, 0)
		g := FromSlice([]int64{0, 2, 1, 1}, 2, 2)
		near(t, "gather", x.Gather(1, g).Float64s(), []float64{0, 2, 4, 4}, 0)
		near(t, "cat", Cat([]*Tensor{x, x}, 0).Narrow(0, 2, 1).Float64s(), []float64{0, 1, 2}, 0)
		st := Stack([]*Tensor{x, x}, 1)
		if s := st.Shape(); s[0] != 2 || s[1] != 2 || s[2] != 3 {
			t.Fatalf("stack shape %v", s)
		}
		near(t, "flip", x.Flip(1).Float64s(), []float64{2, 1, 0, 5, 4, 3}, 0)
		near(t, "expand", FromSlice([]float64{1, 2}, 2, 1).Expand(2, 3).Contiguous().Float64s(), []float64{1, 1, 1, 2, 2, 2}, 0)
		near(t, "repeat", FromSlice([]float64{1, 2}).Repeat(2).Float64s(), []float64{1, 2, 1, 2}, 0)
		near(t, "tril", Ones([]int64{2, 2}, Float64, CPU).Tril(0).Float64s(), []float64{1, 0, 1, 1}, 0)
		near(t, "diagonal", x.Narrow(1, 0, 2).Diagonal(0, 0, 1).Float64s(), []float64{0, 4}, 0)
		near(t, "one_hot", FromSlice([]int64{1, 0}).OneHot(3).Float64s(), []float64{0, 1, 0, 1, 0, 0}, 0)
		near(t, "bincount", FromSlice([]int64{1, 1, 3}).Bincount(0).Float64s(), []float64{0, 2, 0, 1}, 0)
		near(t, "scatter_add", Zeros([]int64{3}, Float64, CPU).ScatterAdd(0, FromSlice([]int64{0, 2, 0}), FromSlice([]float64{1, 2, 3})).Float64s(), []float64{4, 0, 2}, 0)
		v, i := FromSlice([]float64{3, 1, 2}).Sort(0, false)
		near(t, "sort", append(v.Float64s(), i.Float64s()...), []float64{1, 2, 3, 1, 2, 0}, 0)
		tv, ti := FromSlice([]float64{3, 1, 2}).TopK(2, 0, true)
		near(t, "topk", append(tv.Float64s(), ti.Float64s()...), []float64{3, 2, 0, 2}, 0)
		near(t, "cumsum", FromSlice([]float64{1, 2, 3}).Cumsum(0).Float64s(), []float64{1, 3, 6}, 0)
		near(t, "unsqueeze", []float64{float64(x.Unsqueeze(0).Dim())}, []float64{3}, 0)
		near(t, "nonzero", FromSlice([]float64{0, 5, 0, 7}).Nonzero().Float64s(), []float64{1, 3}, 0)
	})
}

func TestNeuralNetworkFunctions(t *testing.T) {
	WithScope(func() {
		x := FromSlice([]float64{3, 4, 0, 2}, 2, 2)
		near(t, "normalize", x.Normalize(2, 1, 1e-12).Float64s(), []float64{0.6, 0.8, 0, 1}, 1e-12)
		sm := FromSlice([]float64{0, math.Log(3)}, 1, 2).Softmax(1)
		near(t, "softmax", sm.Float64s(), []float64{0.25, 0.75}, 1e-12)
		lsm := FromSlice([]float64{0, math.Log(3)}, 1, 2).LogSoftmax(1)
		near(t, "log_softmax", lsm.Float64s(), []float64{math.Log(0.25), math.Log(0.75)}, 1e-12)
		logits := FromSlice([]float64{0, math.Log(3), math.Log(3), 0}, 2, 2)
		ce := CrossEntropy(logits, FromSlice([]int64{1, 1}), ReduceMean, 0)
		near(t, "cross_entropy", []float64{ce.Item()}, []float64{-(math.Log(0.75) + math.Log(0.25)) / 2}, 1e-12)
		mse := MSELoss(FromSlice([]float64{1, 2}), FromSlice([]float64{0, 0}), ReduceMean)
		near(t, "mse", []float64{mse.Item()}, []float64{2.5}, 1e-12)
		lin := Linear(FromSlice([]float64{1, 2}, 1, 2), FromSlice([]float64{1, 1, 2, -1}, 2, 2), FromSlice([]float64{0.5, 0}))
		near(t, "linear", lin.Float64s(), []float64{3.5, 0}, 1e-12)
		img := FromSlice([]float64{1, 2, 3, 4}, 1, 1, 2, 2)
		near(t, "nearest x2", img.Interpolate(4, 4, Nearest, false, false).Narrow(2, 0, 1).Float64s(), []float64{1, 1, 2, 2}, 0)
		near(t, "bilinear same size", img.Interpolate(2, 2, Bilinear, false, false).Float64s(), []float64{1, 2, 3, 4}, 1e-12)
		// the identity affine transform samples the image back exactly
		theta := FromSlice([]float64{1, 0, 0, 0, 1, 0}, 1, 2, 3)
		grid := AffineGrid(theta, []int64{1, 1, 2, 2}, false)
		near(t, "grid_sample identity", GridSample(img, grid, true, PadZeros, false).Float64s(), []float64{1, 2, 3, 4}, 1e-12)
		// a horizontal flip through the grid
		flip := FromSlice([]float64{-1, 0, 0, 0, 1, 0}, 1, 2, 3)
		near(t, "grid_sample flip", GridSample(img, AffineGrid(flip, []int64{1, 1, 2, 2}, false), true, PadZeros, false).Float64s(), []float64{2, 1, 4, 3}, 1e-12)
		emb := Embedding(FromSlice([]float64{1, 2, 3, 4}, 2, 2), FromSlice([]int64{1, 1, 0}))
		near(t, "embedding", emb.Float64s(), []float64{3, 4, 3, 4, 1, 2}, 0)
		near(t, "cdist", CDist(FromSlice([]float64{0, 0}, 1, 2), FromSlice([]float64{3, 4}, 1, 2)).Float64s(), []float64{5}, 1e-9)
	})
}

func TestRandomIsSeededAndDistributed(t *testing.T) {
	WithScope(func() {
		ManualSeed(7)
		a := Rand([]int64{10000}, Float64, CPU)
		ManualSeed(7)
		b := Rand([]int64{10000}, Float64, CPU)
		if a.Sub(b).Abs().Max().Item() != 0 {
			t.Fatal("same seed gave different draws")
		}
		if m := a.Mean().Item(); math.Abs(m-0.5) > 0.02 {
			t.Fatalf("uniform mean %v", m)
		}
		n := Randn([]int64{20000}, Float64, CPU)
		if m, s := n.Mean().Item(), n.Std(false).Item(); math.Abs(m) > 0.03 || math.Abs(s-1) > 0.03 {
			t.Fatalf("normal mean %v std %v", m, s)
		}
		r := Randint(3, 5, []int64{1000}, Int64, CPU)
		if r.Min().Item() != 3 || r.Max().Item() != 4 {
			t.Fatalf("randint range [%v, %v]", r.Min().Item(), r.Max().Item())
		}
		p := Randperm(100, CPU)
		sorted, _ := p.Sort(0, false)
		near(t, "randperm is a permutation", sorted.Float64s(), Arange(0, 100, 1, Float64, CPU).Float64s(), 0)
		// saving and restoring the generator replays the same draws (resume)
		state := RNGState(CPU)
		x := Rand([]int64{5}, Float64, CPU).Float64s()
		SetRNGState(CPU, state)
		near(t, "rng state replay", Rand([]int64{5}, Float64, CPU).Float64s(), x, 0)
	})
}

func TestLibtorchErrorsAreGoErrors(t *testing.T) {
	WithScope(func() {
		a := Ones([]int64{2, 3}, Float32, CPU)
		b := Ones([]int64{2, 3}, Float32, CPU)
		err := Catch(func() { a.MM(b) })
		if err == nil || !strings.Contains(err.Error(), "mm") || !strings.Contains(err.Error(), "2x3") {
			t.Fatalf("shape mismatch: got %v", err)
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error type %T", err)
		}
		if strings.Contains(err.Error(), "frame #") || strings.Contains(err.Error(), "Exception raised from") {
			t.Fatalf("error carries a C++ backtrace: %v", err)
		}
		if !CUDAAvailable() {
			err = Catch(func() { Zeros([]int64{1}, Float32, CUDA(0)) })
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "cuda") {
				t.Fatalf("bad device: got %v", err)
			}
		}
		err = Catch(func() { a.Reshape(7) })
		if err == nil || !strings.Contains(err.Error(), "invalid for input of size 6") {
			t.Fatalf("bad reshape: got %v", err)
		}
		freed := Ones([]int64{1}, Float32, CPU)
		freed.Free()
		if err := Catch(func() { freed.Exp() }); err == nil || !strings.Contains(err.Error(), "freed") {
			t.Fatalf("use after free: got %v", err)
		}
		if err := Catch(func() { a.SumDims(false) }); err == nil {
			t.Fatal("SumDims with no dimension accepted")
		}
		if _, err := ParseDevice("tpu"); err == nil {
			t.Fatal("ParseDevice accepted tpu")
		}
		// a malformed string is not "unavailable" (eval falls back to the CPU only for the latter)
		for _, bad := range []string{"tpu", "cuda:x", "cuda:-1", "CPU"} {
			if _, err := ParseDevice(bad); err == nil || errors.Is(err, ErrDeviceUnavailable) {
				t.Fatalf("ParseDevice(%q): %v, want a malformed-device error", bad, err)
			}
		}
		if !CUDAAvailable() {
			if _, err := ParseDevice("cuda:0"); !errors.Is(err, ErrDeviceUnavailable) {
				t.Fatalf("ParseDevice(cuda:0) without CUDA: %v, want ErrDeviceUnavailable", err)
			}
		} else if _, err := ParseDevice(fmt.Sprintf("cuda:%d", CUDADeviceCount())); !errors.Is(err, ErrDeviceUnavailable) {
			t.Fatalf("ParseDevice of a device past the last: %v, want ErrDeviceUnavailable", err)
		}
	})
}

func TestScopesFreeDeterministically(t *testing.T) {
	before := LiveTensors()
	var kept *Tensor
	outer := NewScope()
	WithScope(func() {
		s := NewScope()
		x := Ones([]int64{4}, Float32, CPU)
		y := x.MulScalar(3)
		_ = y.Add(x)
		s.Keep(y)
		s.Close()
		if !y.Defined() || x.Defined() {
			t.Fatalf("after close: kept defined %v, other defined %v", y.Defined(), x.Defined())
		}
		kept = y
	})
	if kept.Defined() {
		t.Fatal("Keep moved the tensor to the enclosing scope, which should have freed it")
	}
	outer.Close()
	if got := LiveTensors(); got != before {
		t.Fatalf("live tensors %d, want %d", got, before)
	}
	// Persist leaves a tensor to the caller.
	var p *Tensor
	WithScope(func() {
		p = Ones([]int64{2}, Float32, CPU)
		Persist(p)
	})
	if !p.Defined() {
		t.Fatal("persisted tensor was freed by its scope")
	}
	p.Free()
	p.Free() // idempotent
	if got := LiveTensors(); got != before {
		t.Fatalf("live tensors %d, want %d", got, before)
	}
	// a panic inside WithScope still frees
	_ = Catch(func() {
		WithScope(func() {
			Ones([]int64{2}, Float32, CPU)
			Ones([]int64{2}, Float32, CPU).Reshape(3)
		})
	})
	if got := LiveTensors(); got != before {
		t.Fatalf("live tensors after panic %d, want %d", got, before)
	}
}

func TestAutograd(t *testing.T) {
	WithScope(func() {
		x := FromSlice([]float64{1, -2, 3}).SetRequiresGrad(true)
		y := x.Square().Sum()
		y.Backward()
		near(t, "d sum(x^2)", x.Grad().Float64s(), []float64{2, -4, 6}, 0)
		x.ZeroGrad()
		if x.Grad() != nil {
			t.Fatal("ZeroGrad left a gradient")
		}
		// torch.autograd.grad: d/dx of sum(exp(x)) is exp(x), .grad untouched
		g := Grads([]*Tensor{x.Exp().Sum()}, []*Tensor{x}, false)
		near(t, "grad exp", g[0].Float64s(), []float64{math.E, math.Exp(-2), math.Exp(3)}, 1e-12)
		if x.Grad() != nil {
			t.Fatal("Grads wrote .grad")
		}
		// logsumexp's gradient is the softmax
		z := FromSlice([]float64{0, math.Log(3)}).SetRequiresGrad(true)
		z.LogSumExp(false, 0).Backward()
		near(t, "d logsumexp", z.Grad().Float64s(), []float64{0.25, 0.75}, 1e-12)
		NoGrad(func() {
			if x.MulScalar(2).RequiresGrad() {
				t.Fatal("NoGrad recorded an op")
			}
		})
		if !x.MulScalar(2).RequiresGrad() {
			t.Fatal("grad mode not restored after NoGrad")
		}
		if x.Detach().RequiresGrad() {
			t.Fatal("Detach kept requires_grad")
		}
	})
}

// HostCopies counts exactly the calls that move data between host memory and a tensor.
func TestHostCopiesCountsTransfers(t *testing.T) {
	WithScope(func() {
		steps := []struct {
			name string
			want uint64
			do   func()
		}{
			{"FromSlice", 1, func() { FromSlice([]float32{1, 2}, 2) }},
			{"ops on the device", 0, func() {
				x := Rand([]int64{4}, Float32, CPU)
				x.Add(Full([]int64{4}, 2, Float32, CPU)).MulScalar(3).Sum()
				Randint(0, 5, []int64{3}, Int64, CPU).On(CPU)
			}},
			{"Item", 1, func() { Ones([]int64{1}, Float64, CPU).Item() }},
			{"Float64s", 1, func() { Ones([]int64{2}, Float64, CPU).Float64s() }},
			{"Nonzero", 1, func() { Ones([]int64{2}, Float32, CPU).Nonzero() }},
			{"RNGState", 1, func() { RNGState(CPU) }},
		}
		for _, s := range steps {
			before := HostCopies()
			s.do()
			if got := HostCopies() - before; got != s.want {
				t.Errorf("%s: %d host copies counted, want %d", s.name, got, s.want)
			}
		}
	})
}
