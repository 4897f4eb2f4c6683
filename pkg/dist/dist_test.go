package dist

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// The multi-process tests re-execute this test binary: with SPREADTRAIN_DIST_WORKER set, TestMain
// runs the named worker instead of the tests. Every group uses Gloo over 127.0.0.1.
const workerVar = "SPREADTRAIN_DIST_WORKER"

// testTimeout bounds every rendezvous and collective in the workers.
const testTimeout = 20 * time.Second

var workers = map[string]func(g *Group) error{
	"collectives": workerCollectives,
	"grad":        workerGrad,
	"train":       workerTrain,
	"fault":       workerFault,
	"exit7":       workerExit7,
	"sockets":     workerSockets,
}

func TestMain(m *testing.M) {
	name := os.Getenv(workerVar)
	if name == "" {
		torch.SetNumThreads(1)
		os.Exit(m.Run())
	}
	torch.SetNumThreads(1)
	f := workers[name]
	if f == nil {
		fmt.Fprintf(os.Stderr, "unknown worker %q\n", name)
		os.Exit(2)
	}
	timeout := testTimeout
	if s := os.Getenv("SPREADTRAIN_DIST_TEST_TIMEOUT"); s != "" {
		timeout, _ = time.ParseDuration(s)
	}
	g, err := InitFromEnv(WithTimeout(timeout))
	if err == nil {
		var werr error
		if err = torch.Catch(func() { werr = f(g) }); err == nil {
			err = werr
		}
		g.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker error:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func skipWithoutGloo(t *testing.T) {
	t.Helper()
	if !hasBackend("gloo") {
		t.Skipf("the shim was built without Gloo (backends %v)", torch.DistBackends())
	}
}

// spawn runs a worker on 2 processes through Spawn, with output captured for the failure message.
func spawn(t *testing.T, worker string, env ...string) {
	t.Helper()
	skipWithoutGloo(t)
	var out bytes.Buffer
	err := SpawnWith(context.Background(), SpawnConfig{NProc: 2, Env: append(env, workerVar+"="+worker),
		Stdout: &out, Stderr: &out, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatalf("%s workers: %v\n%s", worker, err, out.String())
	}
}

func near(a, b []float64, tol float64) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > tol*math.Max(1, math.Abs(b[i])) {
			return i, false
		}
	}
	return 0, true
}

func expect(what string, got, want []float64, tol float64) error {
	if i, ok := near(got, want, tol); !ok {
		if i < 0 {
			return fmt.Errorf("%s: %d values, want %d", what, len(got), len(want))
		}
		return fmt.Errorf("%s: element %d of %d is %v, want %v", what, i, len(got), got[i], want[i])
	}
	return nil
}

func TestParseEnv(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	e, err := parseEnv(env())
	if err != nil || e.Distributed() || e.WorldSize != 1 {
		t.Fatalf("empty environment: %+v, %v", e, err)
	}
	e, err = parseEnv(env("RANK", "3", "WORLD_SIZE", "4", "LOCAL_RANK", "1", "MASTER_ADDR", "10.0.0.1", "MASTER_PORT", "29500"))
	if err != nil || e != (Env{Rank: 3, WorldSize: 4, LocalRank: 1, MasterAddr: "10.0.0.1", MasterPort: 29500}) {
		t.Fatalf("torchrun environment: %+v, %v", e, err)
	}
	e, err = parseEnv(env("RANK", "1", "WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1"))
	if err != nil || e.LocalRank != 1 {
		t.Fatalf("LOCAL_RANK should default to RANK: %+v, %v", e, err)
	}
	bad := []struct {
		kv   []string
		want string
	}{
		{[]string{"WORLD_SIZE", "two"}, "WORLD_SIZE"},
		{[]string{"WORLD_SIZE", "0"}, "WORLD_SIZE"},
		{[]string{"RANK", "-1"}, "RANK"},
		{[]string{"RANK", "2", "WORLD_SIZE", "2"}, "not below"},
		{[]string{"RANK", "1"}, "not below"},
		{[]string{"LOCAL_RANK", "x"}, "LOCAL_RANK"},
		{[]string{"WORLD_SIZE", "2", "MASTER_PORT", "1"}, "MASTER_ADDR"},
		{[]string{"WORLD_SIZE", "2", "MASTER_ADDR", "h"}, "MASTER_PORT is not set"},
		{[]string{"WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "70000"}, "1..65535"},
		{[]string{"WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "p"}, "MASTER_PORT"},
	}
	for _, b := range bad {
		if _, err := parseEnv(env(b.kv...)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: error %v, want one mentioning %q", b.kv, err, b.want)
		}
	}
}

func TestSingleProcessGroup(t *testing.T) {
	g, err := Init(Env{WorldSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x := torch.FromSlice([]float64{1, 2, 3})
	n, err := g.AllReduceMean([]*torch.Tensor{x})
	if err != nil || n != 0 {
		t.Fatalf("all_reduce on one process: %d bytes, %v", n, err)
	}
	if y, err := g.AllGatherWithGrad(x); err != nil || y != x {
		t.Fatalf("all_gather on one process should return its input: %v, %v", y, err)
	}
	if err := g.Broadcast([]*torch.Tensor{x}, 0); err != nil || g.Barrier() != nil {
		t.Fatal("broadcast/barrier on one process failed")
	}
	if got := x.Float64s(); got[2] != 3 {
		t.Fatalf("values changed: %v", got)
	}
}

// ---- collectives ----

func TestCollectives(t *testing.T) { spawn(t, "collectives") }

func workerCollectives(g *Group) error {
	r := float64(g.Rank())
	// all-reduce over 3 dtypes/shapes, a non-contiguous view and tiny buckets (several all-reduces)
	g.opts.BucketBytes = 40
	a := torch.FromSlice([]float64{r, r + 1, 10 * r, 1}, 2, 2)
	f := float32(r)
	base := torch.FromSlice([]float32{f, 2 * f, 3 * f, 4 * f, 5 * f, 6 * f}, 2, 3)
	bt := base.T() // non-contiguous
	c := torch.FromSlice([]float64{r * r})
	n, err := g.AllReduceMean([]*torch.Tensor{a, bt, c})
	if err != nil {
		return err
	}
	if n != 4*8+6*4+8 {
		return fmt.Errorf("all_reduce moved %d bytes, want %d", n, 4*8+6*4+8)
	}
	if err := expect("mean float64", a.Float64s(), []float64{0.5, 1.5, 5, 1}, 0); err != nil {
		return err
	}
	if err := expect("mean float32 through a transposed view", base.Float64s(), []float64{0.5, 1, 1.5, 2, 2.5, 3}, 0); err != nil {
		return err
	}
	if err := expect("mean scalar", c.Float64s(), []float64{0.5}, 0); err != nil {
		return err
	}
	s := torch.FromSlice([]int64{int64(g.Rank()) + 1, 5})
	if _, err := g.AllReduceSum([]*torch.Tensor{s}); err != nil {
		return err
	}
	if got := s.Int64s(); got[0] != 3 || got[1] != 10 {
		return fmt.Errorf("sum int64: %v, want [3 10]", got)
	}

	// broadcast from rank 1 into a parameter that requires grad
	p := torch.FromSlice([]float64{r, -r, 7}).SetRequiresGrad(true)
	if err := g.Broadcast([]*torch.Tensor{p}, 1); err != nil {
		return err
	}
	if err := expect("broadcast", p.Float64s(), []float64{1, -1, 7}, 0); err != nil {
		return err
	}

	// all-gather, equal and unequal row counts
	x := torch.Full([]int64{2, 3}, r+1, torch.Float32, torch.CPU)
	y, err := g.AllGather(x)
	if err != nil {
		return err
	}
	if err := expect("all_gather", y.Float64s(), []float64{1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2}, 0); err != nil {
		return err
	}
	u := torch.Full([]int64{int64(g.Rank()) + 1, 2}, r+1, torch.Float64, torch.CPU)
	v, err := g.AllGather(u)
	if err != nil {
		return err
	}
	if sh := v.Shape(); sh[0] != 3 || sh[1] != 2 {
		return fmt.Errorf("unequal all_gather shape %v, want [3 2]", sh)
	}
	if err := expect("unequal all_gather", v.Float64s(), []float64{1, 1, 2, 2, 2, 2}, 0); err != nil {
		return err
	}
	if err := g.Barrier(); err != nil {
		return err
	}
	// mismatched trailing shapes are an error on every rank, and the group stays usable
	w := torch.Zeros([]int64{1, 2 + int64(g.Rank())}, torch.Float32, torch.CPU)
	if _, err := g.AllGather(w); err == nil || !strings.Contains(err.Error(), "must match") {
		return fmt.Errorf("mismatched all_gather: error %v, want a shape mismatch", err)
	}
	return g.Barrier()
}

// ---- gradient of the all-gather ----

func TestAllGatherWithGrad(t *testing.T) { spawn(t, "grad") }

// workerGrad checks AllGatherWithGrad's backward against the single-process gradient of the same
// global objective, computed here on the whole batch.
func workerGrad(g *Group) error {
	const B, D, K = 8, 5, 3
	W := g.WorldSize()
	torch.ManualSeed(7)
	X := torch.Randn([]int64{B, D}, torch.Float64, torch.CPU)
	w0 := torch.Randn([]int64{D, K}, torch.Float64, torch.CPU)
	// per-anchor loss over every row: logsumexp_b <z_a, z_b>
	anchorLoss := func(z *torch.Tensor, start, count int64) *torch.Tensor {
		return z.Narrow(0, start, count).MM(z.T()).LogSumExp(false, 1)
	}

	// reference: L = mean over all B anchors
	Xr := X.Clone().SetRequiresGrad(true)
	wr := w0.Clone().SetRequiresGrad(true)
	anchorLoss(Xr.MM(wr), 0, B).Mean().Backward()
	refX, refW := Xr.Grad().Float64s(), wr.Grad().Float64s()

	// equal shares, L_r = mean over local anchors, gradients averaged over ranks (the trainer's setup)
	n := int64(B / W)
	start := int64(g.Rank()) * n
	Xs := X.Narrow(0, start, n).Clone().SetRequiresGrad(true)
	w := w0.Clone().SetRequiresGrad(true)
	zAll, err := g.AllGatherWithGrad(Xs.MM(w))
	if err != nil {
		return err
	}
	anchorLoss(zAll, start, n).Mean().Backward()
	// backward sums over ranks, so this rank's embedding gradient is W times dL/dZ_s ...
	scaled := make([]float64, n*D)
	for i, v := range refX[start*D : (start+n)*D] {
		scaled[i] = float64(W) * v
	}
	if err := expect("input gradient (sum over ranks = W dL/dX)", Xs.Grad().Float64s(), scaled, 1e-10); err != nil {
		return err
	}
	// ... and averaging parameter gradients over ranks gives exactly dL/dw
	gw := w.Grad()
	if _, err := g.AllReduceMean([]*torch.Tensor{gw}); err != nil {
		return err
	}
	if err := expect("parameter gradient after all-reduce mean", gw.Float64s(), refW, 1e-10); err != nil {
		return err
	}

	// unequal shares (3 and 5 rows): with L_r = (sum over local anchors)/B, L = sum_r L_r, so the
	// summed backward gives dL/dX_s directly and parameter gradients are summed
	counts := []int64{3, 5}
	if W != 2 {
		return fmt.Errorf("the unequal case is written for 2 ranks")
	}
	ustart := []int64{0, 3}[g.Rank()]
	uc := counts[g.Rank()]
	Xu := X.Narrow(0, ustart, uc).Clone().SetRequiresGrad(true)
	wu := w0.Clone().SetRequiresGrad(true)
	zu, err := g.AllGatherWithGrad(Xu.MM(wu))
	if err != nil {
		return err
	}
	if zu.Size(0) != B {
		return fmt.Errorf("unequal all_gather_grad has %d rows, want %d", zu.Size(0), B)
	}
	anchorLoss(zu, ustart, uc).Sum().DivScalar(B).Backward()
	if err := expect("input gradient, unequal shares", Xu.Grad().Float64s(), refX[ustart*D:(ustart+uc)*D], 1e-10); err != nil {
		return err
	}
	gwu := wu.Grad()
	if _, err := g.AllReduceSum([]*torch.Tensor{gwu}); err != nil {
		return err
	}
	return expect("parameter gradient, unequal shares", gwu.Float64s(), refW, 1e-10)
}

// ---- the headline: 2 processes on half batches train like 1 process on the whole batch ----

const (
	trainB, trainV, trainIn, trainHidden, trainOut = 8, 2, 6, 16, 4
	trainSteps                                     = 5
	trainLR, trainTau                              = 0.5, 0.3
)

type mlp struct{ params []torch.Named }

func newMLP(seed uint64) *mlp {
	torch.ManualSeed(seed)
	mk := func(name string, shape ...int64) torch.Named {
		return torch.Named{Name: name, Tensor: torch.Randn(shape, torch.Float64, torch.CPU).MulScalar(0.5).SetRequiresGrad(true)}
	}
	return &mlp{params: []torch.Named{
		mk("0.weight", trainHidden, trainIn), mk("0.bias", trainHidden),
		mk("2.weight", trainOut, trainHidden), mk("2.bias", trainOut),
	}}
}

// forward maps x [n, V, in] to embeddings [n, V, out].
func (m *mlp) forward(x *torch.Tensor) *torch.Tensor {
	n := x.Size(0)
	h := torch.Linear(x.Reshape(n*trainV, trainIn), m.params[0].Tensor, m.params[1].Tensor).Relu()
	return torch.Linear(h, m.params[2].Tensor, m.params[3].Tensor).Reshape(n, trainV, trainOut)
}

func (m *mlp) values() map[string][]float64 {
	out := map[string][]float64{}
	for _, p := range m.params {
		out[p.Name] = p.Tensor.Float64s()
	}
	return out
}

// trainData is the global batch: inputs [B, V, in] and labels [B] (4 classes; with 2 views every
// anchor has a positive, so per-rank anchor means combine exactly into the global mean).
func trainData() (*torch.Tensor, *torch.Tensor) {
	torch.ManualSeed(1)
	x := torch.Randn([]int64{trainB, trainV, trainIn}, torch.Float64, torch.CPU)
	y := make([]int64, trainB)
	for i := range y {
		y[i] = int64(i % 4)
	}
	return x, torch.FromSlice(y)
}

func sgd(m *mlp) nn.Optimizer {
	opt, err := nn.NewOptimizer(nn.OptimConfig{Name: "sgd", LR: trainLR, Momentum: 0.9}, m.params)
	if err != nil {
		panic(err)
	}
	return opt
}

func workerTrain(g *Group) error {
	x, y := trainData()
	m := newMLP(100 + uint64(g.Rank())) // different on each rank until the broadcast
	if err := g.BroadcastParameters(m.params, 0); err != nil {
		return err
	}
	opt := sgd(m)
	n := int64(trainB / g.WorldSize())
	start := int64(g.Rank()) * n
	var bytes int64
	for step := 0; step < trainSteps; step++ {
		var err error
		torch.WithScope(func() {
			z := m.forward(x.Narrow(0, start, n))
			var zAll, yAll *torch.Tensor
			if zAll, err = g.AllGatherWithGrad(z); err != nil {
				return
			}
			if yAll, err = g.AllGather(y.Narrow(0, start, n).Contiguous()); err != nil {
				return
			}
			loss := supcon.SupCon(supcon.Views{Z: zAll, Labels: yAll, AnchorStart: start, AnchorCount: n}, trainTau, supcon.DenomAll)
			loss.Backward()
			var b int64
			if b, err = g.AllReduceGradients(m.params); err != nil {
				return
			}
			bytes += b
			opt.Step(trainLR)
			opt.ZeroGrad()
		})
		if err != nil {
			return err
		}
	}
	if want := int64(trainSteps) * 8 * (trainHidden*trainIn + trainHidden + trainOut*trainHidden + trainOut); bytes != want {
		return fmt.Errorf("all-reduced %d bytes over %d steps, want %d", bytes, trainSteps, want)
	}
	buf, err := json.Marshal(m.values())
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(os.Getenv("SPREADTRAIN_DIST_OUT"), fmt.Sprintf("rank%d.json", g.Rank())), buf, 0o644)
}

func TestTrainMatchesSingleProcess(t *testing.T) {
	dir := t.TempDir()
	spawn(t, "train", "SPREADTRAIN_DIST_OUT="+dir)

	x, y := trainData()
	m := newMLP(100)
	opt := sgd(m)
	start := m.values()
	for step := 0; step < trainSteps; step++ {
		torch.WithScope(func() {
			supcon.SupCon(supcon.Views{Z: m.forward(x), Labels: y}, trainTau, supcon.DenomAll).Backward()
			opt.Step(trainLR)
			opt.ZeroGrad()
		})
	}
	want := m.values()
	moved := 0.0
	for name, v := range want {
		for i := range v {
			moved = math.Max(moved, math.Abs(v[i]-start[name][i]))
		}
	}
	if moved < 1e-3 {
		t.Fatalf("reference training barely moved the parameters (%g): the test would prove nothing", moved)
	}
	for r := 0; r < 2; r++ {
		buf, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("rank%d.json", r)))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string][]float64
		if err := json.Unmarshal(buf, &got); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for name, v := range want {
			if err := expect(fmt.Sprintf("rank %d %s", r, name), got[name], v, 1e-5); err != nil {
				t.Error(err)
			}
			for i := range v {
				worst = math.Max(worst, math.Abs(got[name][i]-v[i]))
			}
		}
		t.Logf("rank %d: largest parameter difference to one process on the whole batch after %d steps: %.2g", r, trainSteps, worst)
	}
}

// ---- failures ----

// workerFault: both ranks pass a barrier and say so; rank 1 then idles (the test kills it), and
// rank 0 all-reduces, which must fail once rank 1 is gone.
func workerFault(g *Group) error {
	if err := g.Barrier(); err != nil {
		return err
	}
	fmt.Println("ready")
	if g.Rank() == 1 {
		time.Sleep(time.Minute)
		return errors.New("rank 1 was not killed")
	}
	x := torch.Ones([]int64{1024}, torch.Float32, torch.CPU)
	for {
		if _, err := g.AllReduceMean([]*torch.Tensor{x}); err != nil {
			return err
		}
	}
}

func TestKilledWorkerIsDetected(t *testing.T) {
	faultTest(t, syscall.SIGKILL, testTimeout, "Connection closed by peer")
}

// A peer that stops answering (SIGSTOP) is caught by the timeout instead.
func TestStalledWorkerTimesOut(t *testing.T) {
	faultTest(t, syscall.SIGSTOP, 3*time.Second, "")
}

// faultTest starts the fault worker on 2 processes, sends rank 1 sig, and expects rank 0 to exit
// with a collective error within 30 s.
func faultTest(t *testing.T, sig syscall.Signal, timeout time.Duration, want string) {
	skipWithoutGloo(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmds := make([]*exec.Cmd, 2)
	outs := make([]*bufio.Reader, 2)
	var stderr [2]bytes.Buffer
	for r := range cmds {
		cmd := exec.Command(exe)
		cmd.Env = append(withoutKeys(os.Environ(), "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"),
			workerVar+"=fault", "RANK="+strconv.Itoa(r), "WORLD_SIZE=2", "LOCAL_RANK="+strconv.Itoa(r),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "SPREADTRAIN_DIST_TEST_TIMEOUT="+timeout.String())
		cmd.Stderr = &stderr[r]
		cmd.SysProcAttr = workerAttr()
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		cmds[r], outs[r] = cmd, bufio.NewReader(pipe)
	}
	for r := range cmds {
		line, err := outs[r].ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			t.Fatalf("rank %d did not get ready: %q %v\n%s", r, line, err, stderr[r].String())
		}
	}
	time.Sleep(200 * time.Millisecond) // rank 0 is inside its all-reduce loop
	killed := time.Now()
	if err := cmds[1].Process.Signal(sig); err != nil {
		t.Fatal(err)
	}

	exited := make(chan error, 1)
	go func() { _, _ = outs[0].ReadString(0); exited <- cmds[0].Wait() }()
	select {
	case err := <-exited:
		took := time.Since(killed)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("rank 0 ended with %v, want exit status 3 (a worker error)\n%s", err, stderr[0].String())
		}
		msg := stderr[0].String()
		if !strings.Contains(msg, "all_reduce") || !strings.Contains(msg, "rank 0/2") || !strings.Contains(msg, want) {
			t.Fatalf("rank 0's error does not name the collective and rank:\n%s", msg)
		}
		t.Logf("rank 0 failed %v after rank 1 got %v: %s", took.Round(time.Millisecond), sig, strings.TrimSpace(msg))
	case <-time.After(30 * time.Second):
		t.Fatalf("rank 0 still running 30s after rank 1 got %v\n%s", sig, stderr[0].String())
	}
}

// workerExit7: rank 1 fails with status 7; rank 0 would wait a minute.
func workerExit7(g *Group) error {
	if err := g.Barrier(); err != nil {
		return err
	}
	if g.Rank() == 1 {
		os.Exit(7)
	}
	time.Sleep(time.Minute)
	return nil
}

func TestSpawnReportsFailedWorker(t *testing.T) {
	skipWithoutGloo(t)
	var out bytes.Buffer
	began := time.Now()
	err := SpawnWith(context.Background(), SpawnConfig{NProc: 2, Env: []string{workerVar + "=exit7"}, Stdout: &out, Stderr: &out,
		Grace: 2 * time.Second, Timeout: 60 * time.Second})
	var we *WorkerError
	if !errors.As(err, &we) || we.Rank != 1 || we.Status != "exit status 7" {
		t.Fatalf("Spawn returned %v, want rank 1 with exit status 7\n%s", err, out.String())
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Fatalf("Spawn took %v: the surviving worker was not stopped promptly", took)
	}
	t.Logf("%v (after %v)", err, time.Since(began).Round(time.Millisecond))
}

func TestSpawnPrefixesOutput(t *testing.T) {
	var out bytes.Buffer
	w := &prefixWriter{prefix: "[rank 1] ", w: &out, mu: new(sync.Mutex)}
	fmt.Fprint(w, "a\nb")
	fmt.Fprint(w, "c\n\nd")
	w.Flush()
	if got, want := out.String(), "[rank 1] a\n[rank 1] bc\n[rank 1] \n[rank 1] d\n"; got != want {
		t.Fatalf("prefixed output %q, want %q", got, want)
	}
}

// torchrun's full environment (local_elastic_agent.py), Spawn's FileStore, and LOCAL_RANK on several
// machines.
func TestParseEnvTorchrunAndNodes(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	e, err := parseEnv(env("RANK", "5", "LOCAL_RANK", "1", "GROUP_RANK", "1", "ROLE_RANK", "5", "LOCAL_WORLD_SIZE", "4",
		"WORLD_SIZE", "8", "MASTER_ADDR", "node0", "MASTER_PORT", "29400", "TORCHELASTIC_RESTART_COUNT", "2",
		"TORCHELASTIC_RUN_ID", "job7", "TORCHELASTIC_USE_AGENT_STORE", "True"))
	want := Env{Rank: 5, WorldSize: 8, LocalRank: 1, MasterAddr: "node0", MasterPort: 29400, LocalWorldSize: 4,
		GroupRank: 1, RoleRank: 5, AgentStore: true, RestartCount: 2, RunID: "job7"}
	if err != nil || e != want || !e.Restarted() {
		t.Fatalf("torchrun environment: %+v, %v; want %+v", e, err, want)
	}
	if e, _ := parseEnv(env("WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1", "TORCHELASTIC_USE_AGENT_STORE", "False")); e.AgentStore {
		t.Fatal("TORCHELASTIC_USE_AGENT_STORE=False read as true")
	}
	// Spawn's workers need no MASTER_PORT: their store is a file
	e, err = parseEnv(env("RANK", "1", "WORLD_SIZE", "2", "LOCAL_WORLD_SIZE", "2", "MASTER_ADDR", "127.0.0.1", StoreFileVar, "/tmp/x/store"))
	if err != nil || e.StoreFile != "/tmp/x/store" || e.LocalRank != 1 {
		t.Fatalf("Spawn's environment: %+v, %v", e, err)
	}
	for _, kv := range [][]string{
		{"RANK", "5", "WORLD_SIZE", "8", "LOCAL_WORLD_SIZE", "4", "MASTER_ADDR", "h", "MASTER_PORT", "1"},
		{"RANK", "1", "WORLD_SIZE", "2", "GROUP_RANK", "1", "MASTER_ADDR", "h", "MASTER_PORT", "1"},
	} {
		if _, err := parseEnv(env(kv...)); err == nil || !strings.Contains(err.Error(), "LOCAL_RANK is not set") {
			t.Errorf("%v: error %v, want one asking for LOCAL_RANK", kv, err)
		}
	}
	if _, err := parseEnv(env("RANK", "1", "WORLD_SIZE", "2", "LOCAL_RANK", "2", "LOCAL_WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1")); err == nil ||
		!strings.Contains(err.Error(), "not below LOCAL_WORLD_SIZE") {
		t.Errorf("LOCAL_RANK=2 of 2 accepted: %v", err)
	}
}
