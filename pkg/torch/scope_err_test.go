package torch

import (
	"errors"
	"testing"
)

// WithScopeErr returns f's error or the op's *Error, and frees the scope's tensors either way. (The
// tensors themselves are checked, not the live count: the GC may finalize other tests' tensors
// meanwhile.)
func TestWithScopeErr(t *testing.T) {
	var made []*Tensor
	ones := func() *Tensor { x := Ones([]int64{2}, Float32, CPU); made = append(made, x); return x }
	io := errors.New("disk full")
	if err := WithScopeErr(func() error { ones(); return io }); err != io {
		t.Fatalf("f's error: got %v", err)
	}
	err := WithScopeErr(func() error { ones().Reshape(3); return nil })
	var te *Error
	if !errors.As(err, &te) || te.Op == "" {
		t.Fatalf("a shape error: got %v, want *Error", err)
	}
	if err := WithScopeErr(func() error { ones(); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, x := range made {
		if x.Defined() {
			t.Errorf("tensor %d of %d is still alive after its scope", i, len(made))
		}
	}
}
