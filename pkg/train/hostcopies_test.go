package train

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/spreadtrain/spreadtrain/internal/cudatest"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// A training step that does not log makes no host<->device copy (torch.HostCopies counts them on
// every device, so this CPU test sees what a CUDA step would wait for).
func TestTrainingStepMakesNoHostCopies(t *testing.T) {
	for _, amp := range []string{"off", "on"} {
		if n := copiesPerStep(t, "cpu", amp); n != 0 {
			t.Errorf("amp %s: %v host copies per non-logging step, want 0", amp, n)
		}
	}
}

// The same on CUDA, where a copy would stall the step.
func TestCUDATrainingStepMakesNoHostCopies(t *testing.T) {
	dev := cudatest.Device(t)
	if n := copiesPerStep(t, dev.String(), "auto"); n != 0 {
		t.Errorf("%v host copies per non-logging CUDA step, want 0", n)
	}
}

// copiesPerStep runs the real loop twice, for 2 and for 4 steps of the same epoch with no logging or
// checkpoint in between: both runs do the same set-up, epoch-order upload and final checkpoint, so
// half the difference is what one step copied.
func copiesPerStep(t *testing.T, device, amp string) float64 {
	t.Helper()
	copiesFor := func(steps int) uint64 {
		t.Helper()
		cfg := tinyConfig(t)
		cfg.Train.Device = device
		cfg.Train.Epochs, cfg.Train.LogEvery, cfg.Train.CheckpointEvery = 1, 1000, 1000
		cfg.Speed.AMP = amp
		before := torch.HostCopies()
		res, err := Run(context.Background(), Options{Config: cfg, RunDir: filepath.Join(t.TempDir(), "run"), MaxSteps: steps})
		if err != nil || res.Steps != steps {
			t.Fatalf("%s amp %s, %d steps: %+v, %v", device, amp, steps, res, err)
		}
		return torch.HostCopies() - before
	}
	two, four := copiesFor(2), copiesFor(4)
	return (float64(four) - float64(two)) / 2
}
