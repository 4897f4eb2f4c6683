package main

import (
	"os"

	"github.com/spreadtrain/spreadtrain/pkg/dist"
	"github.com/spreadtrain/spreadtrain/pkg/train"
)

// elasticResume reports whether this process is a worker torchrun restarted
// (TORCHELASTIC_RESTART_COUNT > 0) into a run folder that holds a checkpoint: the run then continues
// from it, with its saved configuration, as --resume would, without anyone having to ask. Every rank
// must see the same folder (shared storage on several machines), as for --resume.
func elasticResume(runDir string) (bool, error) {
	env, err := dist.ReadEnv()
	if err != nil {
		return false, usageError{err}
	}
	if !env.Restarted() || runDir == "" {
		return false, nil
	}
	_, err = os.Stat(train.CheckpointPath(runDir, false))
	return err == nil, nil
}
