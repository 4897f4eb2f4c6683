package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/train"
)

// Global flags work after the command too, and --set reaches any key through the strict decoding.
func TestCLIGlobalFlagsAndSet(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "train", "--threads", "1", "--log-level", "warn", "--out", filepath.Join(dir, "r"), "--set", "optimizer.lrr=1")
	if code != 2 || !strings.Contains(stderr, "unknown configuration key optimizer.lrr") || !strings.Contains(stderr, "clip_norm") {
		t.Fatalf("train --threads 1 ... --set optimizer.lrr=1: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "train", "--out", filepath.Join(dir, "r"), "--set", "method.alpha=2"); code != 2 || !strings.Contains(stderr, "method.alpha") {
		t.Fatalf("--set method.alpha=2: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "train", "--out", filepath.Join(dir, "r"), "--set", "lr"); code != 2 || !strings.Contains(stderr, "section.key=value") {
		t.Fatalf("--set lr: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "train", "--out", filepath.Join(dir, "r"), "--resume", "--config", "ci-smoke"); code != 2 || !strings.Contains(stderr, "--config") {
		t.Fatalf("--resume --config: exit %d, %s", code, stderr)
	}
	code, stdout, _ := runCLI(t, "train", "--help")
	for _, want := range []string{"Optimizer and schedule", "Training loop", "[optimizer.lr]", "[schedule.warmup_steps]", "[train.batch_size]", "Global"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("train --help lacks %q", want)
		}
	}
}

// The command a divergence prints continues the run to its end.
func TestCLIDivergenceAdviceWorks(t *testing.T) {
	cifar := sharedCIFAR(t)
	runDir := filepath.Join(t.TempDir(), "x")
	code, _, stderr := runCLI(t, "train", "--config", "ci-smoke", "--data-dir", cifar, "--epochs", "1", "--optimizer", "sgd",
		"--lr", "1e8", "--schedule", "constant", "--out", runDir)
	if code != 1 || !strings.Contains(stderr, "became") {
		t.Fatalf("the diverging run exited %d:\n%s", code, stderr)
	}
	var advice []string
	for _, line := range strings.Split(stderr, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "spreadtrain" && f[1] == "train" {
			advice = f[1:]
		}
	}
	if len(advice) == 0 || !strings.Contains(strings.Join(advice, " "), "--resume --lr 0.1 --clip-norm 1") {
		t.Fatalf("no advice to follow in:\n%s", stderr)
	}
	if code, _, stderr := runCLI(t, advice...); code != 0 {
		t.Fatalf("following the advice %v exited %d:\n%s", advice, code, stderr)
	}
	cfg, err := train.RunConfigOf(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Optim.LR != 0.1 || cfg.Optim.ClipNorm != 1 || len(cfg.History) != 1 {
		t.Fatalf("config.yaml after the recovery: lr %v clip %v history %+v", cfg.Optim.LR, cfg.Optim.ClipNorm, cfg.History)
	}
	if _, err := os.Stat(filepath.Join(runDir, "embeddings_test.png")); err != nil {
		t.Fatalf("the recovered run did not finish: %v", err)
	}
}

// The logged loss under data parallelism is the global batch's: with deterministic views and a
// model without batch statistics (a ViT), one and two processes log the same first-step loss.
func TestCLIDataParallelLogsGlobalLoss(t *testing.T) {
	cifar := sharedCIFAR(t)
	t.Setenv(asCLI, "1")
	t.Setenv("SPREADTRAIN_THREADS", "1")
	args := []string{"train", "--config", "ci-smoke", "--data-dir", cifar, "--epochs", "1", "--arch", "vit", "--width", "0.125",
		"--eval-every", "0", "--test-per-class-limit", "2",
		"--method", "spread", "--log-every", "1", "--set", "augment.crop.enabled=false", "--set", "augment.hflip=0",
		"--set", "augment.color_jitter.p=0", "--set", "augment.grayscale=0"}
	firstLoss := func(nproc string) float64 {
		runDir := filepath.Join(t.TempDir(), "run")
		if code, _, stderr := runCLI(t, append(args, "--out", runDir, "--nproc-per-node", nproc)...); code != 0 {
			t.Fatalf("%s processes: exit %d\n%s", nproc, code, stderr)
		}
		raw, err := os.ReadFile(filepath.Join(runDir, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			var r train.Record
			if json.Unmarshal([]byte(line), &r) == nil && r.Kind == "step" && r.Step == 1 {
				return r.Values["loss"]
			}
		}
		t.Fatalf("no step-1 record in\n%s", raw)
		return 0
	}
	one, two := firstLoss("1"), firstLoss("2")
	if one == 0 || math.Abs(one-two) > 1e-4*math.Abs(one) {
		t.Fatalf("first-step loss: 1 process %v, 2 processes %v", one, two)
	}
	t.Logf("first-step loss: 1 process %.7f, 2 processes %.7f", one, two)
}
