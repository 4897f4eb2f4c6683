package torch

import (
	"slices"
	"testing"
)

// Inside Autocast a matrix product runs in bfloat16: exactly the product of the bfloat16-rounded
// inputs; outside it, and after it, float32 again. Gradients reach float32 parameters in float32.
func TestAutocastRunsMatmulInBFloat16(t *testing.T) {
	WithScope(func() {
		ManualSeed(3)
		a, w := Randn([]int64{5, 8}, Float32, CPU), Randn([]int64{8, 3}, Float32, CPU).SetRequiresGrad(true)
		want := a.To(BFloat16).Matmul(w.Detach().To(BFloat16))
		var got *Tensor
		Autocast(CPU, BFloat16, func() { got = a.Matmul(w) })
		if got.DType() != BFloat16 {
			t.Fatalf("matmul under autocast: dtype %v, want bfloat16", got.DType())
		}
		near(t, "autocast matmul", got.Float64s(), want.Float64s(), 0)
		if d := a.Matmul(w).DType(); d != Float32 {
			t.Fatalf("matmul after autocast: dtype %v, want float32 (the mode was not restored)", d)
		}
		got.To(Float32).Square().Sum().Backward()
		if g := w.Grad(); g == nil || g.DType() != Float32 {
			t.Fatalf("gradient of a float32 weight used under autocast: %v, want float32", g)
		}
		// nested regions restore the outer one
		Autocast(CPU, BFloat16, func() {
			Autocast(CPU, BFloat16, func() {})
			if d := a.Matmul(w).DType(); d != BFloat16 {
				t.Fatalf("after a nested region: dtype %v, want bfloat16", d)
			}
		})
	})
	if err := Catch(func() { Autocast(CPU, Float32, func() {}) }); err == nil {
		t.Fatal("autocast to float32 was accepted")
	}
}

func TestChannelsLast(t *testing.T) {
	WithScope(func() {
		ManualSeed(4)
		x := Randn([]int64{2, 3, 4, 5}, Float32, CPU)
		cl := x.ChannelsLast()
		if !cl.IsChannelsLast() || cl.IsContiguous() || x.IsChannelsLast() || !x.IsContiguous() {
			t.Fatalf("layouts: channels-last %v/%v, contiguous %v/%v", cl.IsChannelsLast(), x.IsChannelsLast(),
				cl.IsContiguous(), x.IsContiguous())
		}
		if !slices.Equal(cl.Shape(), x.Shape()) {
			t.Fatalf("channels-last changed the shape: %v", cl.Shape())
		}
		near(t, "channels-last values", cl.Float64s(), x.Float64s(), 0)

		// a ResNet with channels-last weights and inputs computes the same features
		m, _ := NewResNet(ResNetSpec{Layers: [4]int64{1, 1, 1, 1}, CIFARStem: true, Width: 8, InChannels: 3})
		defer m.Free()
		m.SetTrain(false)
		img := Randn([]int64{2, 3, 16, 16}, Float32, CPU)
		want := m.Forward(img).Float64s()
		m.ChannelsLast()
		for _, p := range m.Parameters() {
			if len(p.Tensor.Shape()) == 4 && !p.Tensor.IsChannelsLast() {
				t.Fatalf("%s is not channels-last after Module.ChannelsLast", p.Name)
			}
		}
		near(t, "channels-last resnet", m.Forward(img.ChannelsLast()).Float64s(), want, 1e-5)
	})
}

// The multi-tensor AdamW step equals the per-tensor one on parameters of several shapes and layouts.
func TestAdamWForeachMatchesPerTensorUpdate(t *testing.T) {
	WithScope(func() {
		ManualSeed(5)
		shapes := [][]int64{{7}, {3, 4}, {2, 3, 2, 2}, {1}}
		var p1, p2, m1, m2, v1, v2 []*Tensor
		for i, s := range shapes {
			p := Randn(s, Float64, CPU)
			if i == 2 {
				p = p.ChannelsLast()
			}
			p1, p2 = append(p1, p.Clone()), append(p2, p.Clone())
			m1, m2 = append(m1, p.MulScalar(0)), append(m2, p.MulScalar(0))
			v1, v2 = append(v1, p.MulScalar(0)), append(v2, p.MulScalar(0))
		}
		for step := int64(1); step <= 4; step++ {
			var grads []*Tensor
			for _, s := range shapes {
				grads = append(grads, Randn(s, Float64, CPU))
			}
			lr := 0.1 / float64(step)
			for i := range shapes {
				AdamWUpdate(p1[i], grads[i], m1[i], v1[i], lr, 0.9, 0.99, 1e-8, 0.05, step)
			}
			AdamWForeach(p2, grads, m2, v2, lr, 0.9, 0.99, 1e-8, 0.05, step)
		}
		for i := range shapes {
			near(t, "foreach param", p2[i].Float64s(), p1[i].Float64s(), 1e-13)
			near(t, "foreach exp_avg_sq", v2[i].Float64s(), v1[i].Float64s(), 1e-13)
		}
		if err := Catch(func() { AdamWForeach(p2, p2[:1], m2, v2, 0.1, 0.9, 0.99, 1e-8, 0, 1) }); err == nil {
			t.Fatal("lists of different lengths were accepted")
		}
	})
}
