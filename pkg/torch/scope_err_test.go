package torch

import (
	"errors"
	"testing"
)

// WithScopeErr returns f's error or the op's *Error, and frees the scope's tensors either way.
func TestWithScopeErr(t *testing.T) {
	before := LiveTensors()
	io := errors.New("disk full")
	if err := WithScopeErr(func() error { Ones([]int64{2}, Float32, CPU); return io }); err != io {
		t.Fatalf("f's error: got %v", err)
	}
	err := WithScopeErr(func() error { Ones([]int64{2}, Float32, CPU).Reshape(3); return nil })
	var te *Error
	if !errors.As(err, &te) || te.Op == "" {
		t.Fatalf("a shape error: got %v, want *Error", err)
	}
	if err := WithScopeErr(func() error { Ones([]int64{2}, Float32, CPU); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := LiveTensors(); got != before {
		t.Fatalf("live tensors %d, want %d", got, before)
	}
}
