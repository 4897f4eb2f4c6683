package train

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// A training step that does not log makes no host<->device copy (torch.HostCopies counts them on
// every device, so this CPU test sees what a CUDA step would wait for). The real loop runs twice, for
// 2 and for 4 steps of the same epoch with no logging or checkpoint in between: both runs do the same
// set-up, epoch-order upload and final checkpoint, so the difference is what steps 3 and 4 copied.
func TestTrainingStepMakesNoHostCopies(t *testing.T) {
	for _, amp := range []string{"off", "on"} {
		copiesFor := func(steps int) uint64 {
			t.Helper()
			cfg := tinyConfig(t)
			cfg.Train.Epochs, cfg.Train.LogEvery, cfg.Train.CheckpointEvery = 1, 1000, 1000
			cfg.Speed.AMP = amp
			before := torch.HostCopies()
			res, err := Run(context.Background(), Options{Config: cfg, RunDir: filepath.Join(t.TempDir(), "run"), MaxSteps: steps})
			if err != nil || res.Steps != steps {
				t.Fatalf("amp %s, %d steps: %+v, %v", amp, steps, res, err)
			}
			return torch.HostCopies() - before
		}
		two, four := copiesFor(2), copiesFor(4)
		if four != two {
			t.Errorf("amp %s: a 4-step run made %d host copies, a 2-step run %d: %d per non-logging step, want 0",
				amp, four, two, int64(four-two)/2)
		}
	}
}
