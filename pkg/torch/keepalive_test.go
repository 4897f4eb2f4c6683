package torch

import (
	"runtime"
	"sync"
	"testing"
)

// A tensor left to the GC (no scope) whose last use is an op's argument must not be finalized while
// the op runs: every call that passes a handle keeps its Go tensor alive until the call returns.
// Without that, the finalizer frees the handle mid-call (a use-after-free: wrong sums, or a crash).
func TestHandlesOutliveTheirCalls(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	const n = 64
	for i := 0; i < 300; i++ {
		// ones(n, n) @ ones(n, n) is n everywhere: each operand is dead once its handle is taken
		got := Ones([]int64{n, n}, Float32, CPU).MM(Ones([]int64{n, n}, Float32, CPU)).Sum().Item()
		if got != n*n*n {
			t.Fatalf("iteration %d: sum of ones @ ones = %v, want %d", i, got, n*n*n)
		}
	}
}
