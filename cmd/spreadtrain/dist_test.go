package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/train"
)

// restartConfig is ci-smoke with every step logged and a checkpoint every 2 steps (2 epochs of 4
// steps), random augmentation on: a resumed or restarted rank must continue its own generator's
// stream (each rank's is in the checkpoint) for its losses to equal an uninterrupted run's.
const restartConfig = `data:
  name: cifar10-jpg
  per_class_limit: 30
  test_per_class_limit: 10
model:
  arch: resnet18
  stem: cifar
  width: 0.0625
decoder:
  width: 0.0625
train:
  epochs: 2
  batch_size: 64
  device: cpu
  checkpoint_every: 2
  log_every: 1
  knn: 20
`

// stepLosses is the run's per-step loss records.
func stepLosses(t *testing.T, runDir string) []map[string]float64 {
	t.Helper()
	recs, err := train.ReadMetrics(runDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]float64
	for _, r := range recs {
		if r.Kind == "step" {
			v := map[string]float64{"step": float64(r.Step)}
			for _, k := range []string{"loss", "supcon", "cnce", "ae", "lr"} {
				v[k] = r.Values[k]
			}
			out = append(out, v)
		}
	}
	return out
}

// lastLoggedStep is the last step record metrics.jsonl holds so far (0 when none).
func lastLoggedStep(runDir string) int {
	raw, _ := os.ReadFile(filepath.Join(runDir, "metrics.jsonl"))
	last := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if i := strings.Index(line, `"kind":"step","step":`); i >= 0 {
			rest := line[i+len(`"kind":"step","step":`):]
			if n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')]); err == nil {
				last = n
			}
		}
	}
	return last
}

// cliProcess starts this test binary as spreadtrain with args and extra environment.
func cliProcess(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), asCLI+"=1", "SPREADTRAIN_THREADS=1"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, &out
}

// waitForStep waits until the run has logged (and so checkpointed past) step n.
func waitForStep(t *testing.T, runDir string, n int, out *bytes.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); lastLoggedStep(runDir) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not reach step %d in 3 minutes:\n%s", n, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sigtermAfterStep2 starts args on two processes, sends the launcher SIGTERM once runDir has logged
// step 2, and returns the launcher's output, the last step logged and its exit error; a run that
// finished all 8 steps first proves nothing and fails the test.
func sigtermAfterStep2(t *testing.T, args []string, runDir string) (*bytes.Buffer, int, error) {
	t.Helper()
	cmd, out := cliProcess(t, nil, append(args, "--nproc-per-node", "2")...)
	waitForStep(t, runDir, 2, out)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := waitExit(t, cmd, 2*time.Minute)
	stopped := lastLoggedStep(runDir)
	if stopped >= 8 {
		t.Fatalf("the run finished (step %d) before SIGTERM took effect: the test proves nothing", stopped)
	}
	return out, stopped, err
}

func waitExit(t *testing.T, cmd *exec.Cmd, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		t.Fatalf("%v still running after %v", cmd.Args, limit)
		return nil
	}
}

// Data-parallel runs that are stopped, or lose a worker, continue from their last checkpoint and
// end exactly where an uninterrupted run ends: the same per-step losses (all 8 steps).
func TestDataParallelStopAndRestart(t *testing.T) {
	cifar := sharedCIFAR(t)
	t.Setenv(asCLI, "1")
	t.Setenv("SPREADTRAIN_THREADS", "1")
	cfgPath := filepath.Join(t.TempDir(), "restart.yaml")
	if err := os.WriteFile(cfgPath, []byte(restartConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	trainArgs := func(out string) []string {
		return []string{"train", "--config", cfgPath, "--data-dir", cifar, "--out", out, "--dist-timeout", "60s"}
	}
	ref := filepath.Join(t.TempDir(), "uninterrupted")
	if code, _, stderr := runCLI(t, append(trainArgs(ref), "--nproc-per-node", "2")...); code != 0 {
		t.Fatalf("uninterrupted two-process run exited %d:\n%s", code, stderr)
	}
	want := stepLosses(t, ref)
	if len(want) != 8 {
		t.Fatalf("the uninterrupted run logged %d steps, want 8", len(want))
	}

	// SIGTERM to the launcher (docker stop, a Kubernetes eviction): the workers stop at one agreed
	// step after writing a checkpoint; --resume finishes the run.
	t.Run("sigterm", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "run")
		out, stopped, err := sigtermAfterStep2(t, trainArgs(dir), dir)
		if err == nil || !strings.Contains(out.String(), "stopped by terminated") {
			t.Fatalf("the launcher ended with %v, want a stop by SIGTERM:\n%s", err, out.String())
		}
		if strings.Count(out.String(), "after writing a checkpoint") != 2 {
			t.Fatalf("both workers should stop at the agreed step after writing a checkpoint, none failing in a collective:\n%s", out.String())
		}
		if code, _, stderr := runCLI(t, "train", "--out", dir, "--resume", "--nproc-per-node", "2"); code != 0 {
			t.Fatalf("resume exited %d:\n%s", code, stderr)
		}
		if got := stepLosses(t, dir); !reflect.DeepEqual(got, want) {
			t.Fatalf("stopped at step %d and resumed; losses\n%v\nuninterrupted\n%v", stopped, got, want)
		}
		t.Logf("SIGTERM stopped both workers after step %d; the resumed run's 8 step losses equal the uninterrupted run's", stopped)
	})

	// A restart with another number of processes (here 2 -> 1) re-shards the same global batches:
	// the same steps at the same learning rates, the losses moving only by what is per rank (batch
	// norm's statistics, rank 1's augmentation stream).
	t.Run("other world size", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "run")
		_, stopped, _ := sigtermAfterStep2(t, trainArgs(dir), dir)
		code, _, stderr := runCLI(t, "train", "--out", dir, "--resume")
		if code != 0 {
			t.Fatalf("resume on one process exited %d:\n%s", code, stderr)
		}
		if !strings.Contains(stderr, `processes="2 -> 1"`) {
			t.Errorf("the resume did not say the number of processes changed:\n%s", stderr)
		}
		got := stepLosses(t, dir)
		if len(got) != len(want) {
			t.Fatalf("resumed on one process: %d steps logged, want %d:\n%v", len(got), len(want), got)
		}
		for i, g := range got {
			w := want[i]
			if g["step"] != w["step"] || g["lr"] != w["lr"] {
				t.Errorf("step record %d: step %v lr %v, uninterrupted step %v lr %v", i, g["step"], g["lr"], w["step"], w["lr"])
			}
			if int(g["step"]) <= stopped && !reflect.DeepEqual(g, w) {
				t.Errorf("step %v (before the stop): %v, uninterrupted %v", g["step"], g, w)
			}
			if d := math.Abs(g["loss"]-w["loss"]) / w["loss"]; !(d < 0.2) {
				t.Errorf("step %v: loss %v on one process, %v on two (%.0f %% apart)", g["step"], g["loss"], w["loss"], 100*d)
			}
		}
		t.Logf("stopped after step %d on two processes, finished on one: the same steps and learning rates; losses %v (two processes: %v)", stopped, got, want)
	})

	// torchrun: the agent hosts the store (Python's TCPStore, as torchrun does) and the workers
	// connect to it with TORCHELASTIC_USE_AGENT_STORE=True. Rank 1 is killed; torchrun would stop
	// rank 0 and start both again with TORCHELASTIC_RESTART_COUNT=1, which resume on their own.
	t.Run("torchrun", func(t *testing.T) {
		port, stopAgent := agentStore(t)
		defer stopAgent()
		dir := filepath.Join(t.TempDir(), "run")
		workers := func(attempt int) ([]*exec.Cmd, []*bytes.Buffer) {
			var cmds []*exec.Cmd
			var outs []*bytes.Buffer
			for r := 0; r < 2; r++ {
				cmd, out := cliProcess(t, torchrunEnv(r, 2, port, attempt), trainArgs(dir)...)
				cmds, outs = append(cmds, cmd), append(outs, out)
			}
			return cmds, outs
		}
		cmds, outs := workers(0)
		waitForStep(t, dir, 2, outs[0])
		if err := cmds[1].Process.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := waitExit(t, cmds[0], 2*time.Minute); err == nil {
			t.Fatalf("rank 0 finished although rank 1 was killed:\n%s", outs[0].String())
		}
		_ = cmds[1].Wait()
		killedAt := lastLoggedStep(dir)
		if killedAt >= 8 {
			t.Fatalf("the run finished (step %d) before rank 1 was killed: the test proves nothing", killedAt)
		}
		cmds, outs = workers(1)
		for r, cmd := range cmds {
			if err := waitExit(t, cmd, 4*time.Minute); err != nil {
				t.Fatalf("restarted rank %d: %v\n%s", r, err, outs[r].String())
			}
		}
		if !strings.Contains(outs[0].String(), "resuming from the run's last checkpoint") {
			t.Fatalf("the restarted rank 0 did not say it resumed:\n%s", outs[0].String())
		}
		if got := stepLosses(t, dir); !reflect.DeepEqual(got, want) {
			t.Fatalf("killed rank 1 after step %d, restarted; losses\n%v\nuninterrupted\n%v", killedAt, got, want)
		}
		t.Logf("rank 1 killed after step %d; the restarted job resumed and its 8 step losses equal the uninterrupted run's", killedAt)
	})
}

// torchrunEnv is the environment torchrun's agent gives worker rank of a one-machine job
// (torch/distributed/elastic/agent/server/local_elastic_agent.py), with the agent's store at port.
func torchrunEnv(rank, world, port, restart int) []string {
	return []string{"RANK=" + strconv.Itoa(rank), "LOCAL_RANK=" + strconv.Itoa(rank), "GROUP_RANK=0",
		"ROLE_RANK=" + strconv.Itoa(rank), "ROLE_NAME=default", "LOCAL_WORLD_SIZE=" + strconv.Itoa(world),
		"WORLD_SIZE=" + strconv.Itoa(world), "GROUP_WORLD_SIZE=1", "ROLE_WORLD_SIZE=" + strconv.Itoa(world),
		"MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port), "TORCHELASTIC_RESTART_COUNT=" + strconv.Itoa(restart),
		"TORCHELASTIC_MAX_RESTARTS=1", "TORCHELASTIC_RUN_ID=spreadtrain-test", "TORCHELASTIC_USE_AGENT_STORE=True"}
}

// agentStore starts the store torchrun's agent hosts: PyTorch's own TCPStore (Debian's python3-torch),
// serving until stop is called. It returns the port.
func agentStore(t *testing.T) (int, func()) {
	t.Helper()
	// a PyTorch >= 2.4 built without libuv (Debian 13's) refuses the default libuv store: the classic
	// one there, as torchrun's agent would need too
	const py = `import datetime, sys
import torch.distributed as dist
args = ("127.0.0.1", 0, 2, True, datetime.timedelta(seconds=300))
try:
    store = dist.TCPStore(*args, wait_for_workers=False)
except RuntimeError as e:
    if "libuv" not in str(e):
        raise
    store = dist.TCPStore(*args, wait_for_workers=False, use_libuv=False)
print(store.port, flush=True)
sys.stdin.read()
`
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skipf("SKIPPED: the agent store is PyTorch's TCPStore from /usr/bin/python3 (python3-torch), absent here: %v", err)
	}
	cmd := exec.Command("/usr/bin/python3", "-c", py)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	port, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("PyTorch's TCPStore did not start (python3-torch installed?): %q %v\n%s", line, err, stderr.String())
	}
	return port, func() { stdin.Close(); _ = cmd.Wait() }
}
