package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/data"
)

// interruptedRun trains tinyConfig for 3 steps (of 5 per epoch: 90 training images, batch 16) into a
// fresh folder, as a run killed mid-epoch.
func interruptedRun(t *testing.T) (Config, string) {
	t.Helper()
	cfg := tinyConfig(t)
	dir := filepath.Join(t.TempDir(), "run")
	if res, err := Run(context.Background(), Options{Config: cfg, RunDir: dir, MaxSteps: 3}); err != nil || res.Steps != 3 {
		t.Fatalf("interrupted run: %+v, %v", res, err)
	}
	return cfg, dir
}

func stepRecords(t *testing.T, dir string) map[int]Record {
	t.Helper()
	recs, err := ReadMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]Record{}
	for _, r := range recs {
		if r.Kind == "step" {
			out[r.Step] = r
		}
	}
	return out
}

// cosineLR is the cosine schedule written out by hand (min_lr 0): base at phase 0, 0 at phase 1.
func cosineLR(base, phase float64) float64 { return 0.5 * base * (1 + math.Cos(math.Pi*phase)) }

// A run resumed on another batch size and learning rate continues the epoch in progress at its first
// unseen image, re-plans the cosine from the phase it had reached, and records the change.
func TestResumeWithOtherBatchSizeAndLR(t *testing.T) {
	_, dir := interruptedRun(t)
	res, err := Run(context.Background(), Options{RunDir: dir, Resume: true, Override: func(c *Config) error {
		c.Train.BatchSize, c.Optim.LR = 8, 1e-3
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	// 3 steps of 16 served 48 images of epoch 1: at batch 8 it goes on at batch 6 of 11 (90 / 8), so
	// 5 more steps, then 11 for epoch 2: 3 + 5 + 11 = 19 steps.
	if res.Steps != 19 || res.Epochs != 2 {
		t.Fatalf("resumed run: %+v, want 19 steps over 2 epochs", res)
	}
	recs := stepRecords(t, dir)
	// the cosine had reached phase 3/10 at step 3; the 16 steps left cover the rest of it (the record
	// after k steps, one per step here, holds the rate of 0-based step k-1)
	for k := 4; k <= 19; k++ {
		want := cosineLR(1e-3, 0.3+0.7*float64(k-1-3)/16)
		if got := recs[k].Values["lr"]; math.Abs(got-want) > 1e-12 {
			t.Errorf("lr at step %d: %v, want %v", k, got, want)
		}
	}
	if got, want := recs[3].Values["lr"], cosineLR(3e-4, 0.2); math.Abs(got-want) > 1e-12 {
		t.Errorf("lr before the resume: %v, want %v", got, want)
	}
	saved, err := RunConfigOf(dir)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Train.BatchSize != 8 || saved.Optim.LR != 1e-3 || len(saved.History) != 1 || saved.History[0].Step != 3 {
		t.Fatalf("config.yaml: batch %d lr %v history %+v", saved.Train.BatchSize, saved.Optim.LR, saved.History)
	}
	want := []Change{{Key: "optimizer.lr", From: "0.0003", To: "0.001"}, {Key: "train.batch_size", From: "16", To: "8"}}
	if got := saved.History[0].Changes; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("history changes %+v, want %+v", got, want)
	}
	all, _ := ReadMetrics(dir)
	found := false
	for _, r := range all {
		found = found || (r.Kind == "resume" && r.Step == 3 && len(r.Changes) == 2)
	}
	if !found {
		t.Fatal("metrics.jsonl has no resume record at step 3")
	}

	// --epochs 3 on the finished run: one more epoch, a new cosine cycle over its 11 steps
	res, err = Run(context.Background(), Options{RunDir: dir, Resume: true, Override: func(c *Config) error {
		c.Train.Epochs = 3
		return nil
	}})
	if err != nil || res.Steps != 30 || res.Epochs != 3 {
		t.Fatalf("extended run: %+v, %v", res, err)
	}
	recs = stepRecords(t, dir)
	for step := 19; step < 30; step++ {
		want := cosineLR(1e-3, float64(step-19)/11)
		if got := recs[step+1].Values["lr"]; math.Abs(got-want) > 1e-12 {
			t.Errorf("extension: lr at step index %d: %v, want %v", step, got, want)
		}
	}
	if saved, _ := RunConfigOf(dir); len(saved.History) != 2 || saved.History[1].Step != 19 || saved.History[1].Changes[0].Key != "train.epochs" {
		t.Fatalf("history after the extension: %+v", saved.History)
	}
}

// The epoch in progress continues at the first batch of the new size with no image already seen.
func TestReplanLoaderSkipsNoSeenImage(t *testing.T) {
	saved := data.SamplerState{N: 90, BatchSize: 16, DropLast: true, World: 1, Epoch: 0, Pos: 3}
	for _, c := range []struct{ perRank, world, want int }{
		{8, 1, 6},  // 48 images seen: 6 batches of 8
		{10, 1, 5}, // 48 seen: 5 batches of 10 start at 50 (2 skipped)
		{16, 1, 3}, // unchanged
		{8, 2, 3},  // two processes of 8: the global batch is 16 again
		{32, 1, 2}, // 48 seen: the next batch of 32 would start at 64, the last whole one ends at 64
	} {
		got := replanLoader(saved, c.perRank, 0, c.world)
		if got.Pos != c.want || got.BatchSize != c.perRank || got.World != c.world {
			t.Errorf("batch %d x %d: %+v, want position %d", c.perRank, c.world, got, c.want)
		}
	}
	if got := replanLoader(saved, 8, 1, 2); got.Rank != 1 {
		t.Errorf("rank 1 resumed as rank %d", got.Rank)
	}
}

// A device change, here CPU to CPU with another thread count, resumes the same model: its first
// step's loss matches the uninterrupted run's (to float rounding; the thread count changes the
// order of sums).
func TestResumeOnOtherThreads(t *testing.T) {
	cfg, dir := interruptedRun(t)
	full := filepath.Join(t.TempDir(), "full")
	if _, err := Run(context.Background(), Options{Config: cfg, RunDir: full}); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), Options{RunDir: dir, Resume: true, Override: func(c *Config) error {
		c.Train.Threads, c.Train.Device = 2, "cpu"
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := stepRecords(t, full)[4].Values["loss"], stepRecords(t, dir)[4].Values["loss"]
	if a == 0 || math.Abs(a-b) > 1e-4*math.Abs(a) {
		t.Fatalf("step 4 loss: uninterrupted %v, resumed on 2 threads %v", a, b)
	}
	saved, _ := RunConfigOf(dir)
	if saved.Train.Threads != 2 || len(saved.History) != 1 || saved.History[0].Changes[len(saved.History[0].Changes)-1].Key != "train.threads" {
		t.Fatalf("config.yaml after the thread change: threads %d, history %+v", saved.Train.Threads, saved.History)
	}
}

// A run moved to another machine finds its data in another folder: data.dir may change on resume
// (recorded in the history), the data itself may not.
func TestResumeFromAnotherDataDir(t *testing.T) {
	cfg, dir := interruptedRun(t)
	moved := filepath.Join(t.TempDir(), "moved")
	src, err := filepath.Abs(cfg.Data.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src, moved); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{RunDir: dir, Resume: true, MaxSteps: 1, Override: func(c *Config) error {
		c.Data.Dir = moved
		return nil
	}})
	if err != nil || res.Steps != 4 {
		t.Fatalf("resume from %s: %+v, %v", moved, res, err)
	}
	saved, _ := RunConfigOf(dir)
	if saved.Data.Dir != moved || len(saved.History) != 1 || saved.History[0].Changes[0].Key != "data.dir" {
		t.Fatalf("config.yaml after the move: data.dir %q, history %+v", saved.Data.Dir, saved.History)
	}
}

// A change of the model's shape (or of anything else that defines the experiment) is refused with
// the reason, and the run folder is left as it was.
func TestResumeRefusesShapeChange(t *testing.T) {
	_, dir := interruptedRun(t)
	before, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	for key, change := range map[string]func(*Config){
		"model.width":    func(c *Config) { c.Model.Width = 0.125 },
		"method.alpha":   func(c *Config) { c.Method.Alpha = 0.9 },
		"data.name":      func(c *Config) { c.Data.Name = "mnist" },
		"optimizer.name": func(c *Config) { c.Optim.Name = "sgd" },
	} {
		_, err := Run(context.Background(), Options{RunDir: dir, Resume: true, Override: func(c *Config) error { change(c); return nil }})
		var refused *ResumeRefusal
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), key+" cannot change") {
			t.Errorf("changing %s on resume: %v", key, err)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "config.yaml")); string(after) != string(before) {
		t.Fatal("a refused resume rewrote config.yaml")
	}
	if _, err := Run(context.Background(), Options{RunDir: dir, Resume: true, Override: func(c *Config) error {
		c.Train.Epochs = 0
		return nil
	}}); err == nil {
		t.Fatal("0 epochs accepted on resume")
	}
}

// An unreadable last checkpoint is reported with the explicit fallback to the best one, which works.
func TestResumeOffersBestCheckpoint(t *testing.T) {
	cfg := tinyConfig(t)
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), Options{Config: cfg, RunDir: dir}); err != nil {
		t.Fatal(err)
	}
	last := CheckpointPath(dir, false)
	raw, _ := os.ReadFile(last)
	os.WriteFile(last, raw[:len(raw)/2], 0o644) // a truncated file
	_, err := Run(context.Background(), Options{RunDir: dir, Resume: true})
	if err == nil || !strings.Contains(err.Error(), "--resume --from best") || !strings.Contains(err.Error(), last) {
		t.Fatalf("unreadable last checkpoint: %v", err)
	}
	best, err := ReadCheckpoint(CheckpointPath(dir, true))
	if err != nil {
		t.Fatal(err)
	}
	bestStep := best.Pos.Step
	best.Free()
	res, err := Run(context.Background(), Options{RunDir: dir, Resume: true, From: "best"})
	if err != nil || res.Steps != 10 || res.Epochs != 2 {
		t.Fatalf("resume from the best checkpoint (step %d): %+v, %v", bestStep, res, err)
	}
	if _, err := ReadCheckpoint(last); err != nil {
		t.Fatalf("the last checkpoint was not rewritten: %v", err)
	}
}

// The learning-rate plan: a fresh run is exactly nn.Schedule; a re-plan continues the cosine without
// a jump and ramps a new warm-up from the current step.
func TestLRPlan(t *testing.T) {
	s := Default().Schedule
	s.WarmupSteps = 4
	p := configuredPlan(s)
	for step := 0; step < 20; step++ {
		if got, want := p.lr(s, 0.1, step, 20), s.LR(0.1, step, 20); got != want {
			t.Fatalf("step %d: %v, want nn.Schedule's %v", step, got, want)
		}
	}
	// at step 12 of 20 (phase (12-4)/16 = 0.5) the run grows to 36 steps: no jump, then slower decay
	q := p.replan(s, s, 12, 20, false)
	if got, want := q.lr(s, 0.1, 12, 36), s.LR(0.1, 12, 20); math.Abs(got-want) > 1e-15 {
		t.Errorf("re-planned lr at the resume step %v, before %v", got, want)
	}
	if got, want := q.lr(s, 0.1, 24, 36), cosineLR(0.1, 0.5+0.5*12.0/24); math.Abs(got-want) > 1e-15 {
		t.Errorf("re-planned lr at step 24: %v, want %v", got, want)
	}
	// a new warm-up of 5 steps from step 12: 1/5, 2/5, ... of the rate the plan had reached
	s2 := s
	s2.WarmupSteps = 5
	w := p.replan(s, s2, 12, 20, true)
	for i := 0; i < 5; i++ {
		if got, want := w.lr(s2, 0.1, 12+i, 36), float64(i+1)/5*cosineLR(0.1, 0.5); math.Abs(got-want) > 1e-15 {
			t.Errorf("new warm-up step %d: %v, want %v", i, got, want)
		}
	}
	if got, want := w.lr(s2, 0.1, 17+19, 36), cosineLR(0.1, 1); math.Abs(got-want) > 1e-15 {
		t.Errorf("after the new warm-up the cosine ends at %v, want %v", got, want)
	}
}

// SetKey applies one key through the strict YAML decoding of a config file.
func TestSetKey(t *testing.T) {
	cfg := Default()
	for key, value := range map[string]string{"optimizer.lr": "1e-4", "augment.crop.scale": "[0.5, 1]",
		"train.stream_data": "true", "data.name": "fashion-mnist"} {
		if err := SetKey(&cfg, key, value); err != nil {
			t.Fatalf("%s=%s: %v", key, value, err)
		}
	}
	if cfg.Optim.LR != 1e-4 || cfg.Augment.Crop.Scale != [2]float64{0.5, 1} || !cfg.Train.StreamData ||
		cfg.Data.Name != "fashion-mnist" || cfg.Optim.WeightDecay != Default().Optim.WeightDecay {
		t.Fatalf("after SetKey: %+v", cfg)
	}
	for key, want := range map[string]string{"optimizer.lrr": "optimizer has: beta1, beta2, clip_norm",
		"nope.lr": "sections: augment, data", "history": "written by spreadtrain", "train": "cannot unmarshal"} {
		if err := SetKey(&cfg, key, "1"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SetKey(%s): %v, want %q", key, err, want)
		}
	}
}
