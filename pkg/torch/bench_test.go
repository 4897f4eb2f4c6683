package torch

// Op-call overhead through Go + cgo + shim. Compare with bench/cpp/op_overhead (libtorch from C++)
// and bench/op_overhead.py (PyTorch eager) through bench/op_overhead.sh, which runs all of them in
// one go; ratios only mean something within one run of that script.

import "testing"

var benchSink float64

// BenchmarkSmallOp: add of two 1-element float32 tensors, the result freed every iteration.
func BenchmarkSmallOp(b *testing.B) {
	// free: inside one scope, the result released with Free (the cheapest pattern the API offers)
	// (a scope reopened every 1024 ops, so that its slot list stays small)
	b.Run("add/free", func(b *testing.B) {
		x, y := Ones([]int64{1}, Float32, CPU), Ones([]int64{1}, Float32, CPU)
		defer x.Free()
		defer y.Free()
		b.ResetTimer()
		for i := 0; i < b.N; {
			WithScope(func() {
				for end := min(i+1024, b.N); i < end; i++ {
					x.Add(y).Free()
				}
			})
		}
	})
	// scope: one WithScope per op (the pattern of a training step, amortised over far more ops there)
	b.Run("add/scope", func(b *testing.B) {
		x, y := Ones([]int64{1}, Float32, CPU), Ones([]int64{1}, Float32, CPU)
		defer x.Free()
		defer y.Free()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			WithScope(func() { x.Add(y) })
		}
	})
	// item: a 0-d float32 read into Go
	b.Run("item", func(b *testing.B) {
		s := Ones(nil, Float32, CPU)
		defer s.Free()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			benchSink += s.Item()
		}
	})
	// cgo: the bare cost of one cgo call into the shim (st_is_grad_enabled reads a thread-local)
	b.Run("cgo", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if GradEnabled() {
				benchSink++
			}
		}
	})
}
