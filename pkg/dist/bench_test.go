package dist

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Step-time benchmark of data parallelism on this machine (bench/dist.sh runs it): one SupCon
// training step of an MLP on a global batch, by 1 process and by 2 processes with half each.
const (
	benchB, benchV, benchIn, benchHidden, benchOut = 256, 2, 512, 1024, 128
	benchWarmup, benchSteps                        = 3, 20
)

func init() { workers["bench"] = workerBench }

func workerBench(g *Group) error {
	if s := os.Getenv("SPREADTRAIN_DIST_BENCH_THREADS"); s != "" {
		n, _ := strconv.Atoi(s)
		torch.SetNumThreads(n)
	}
	torch.ManualSeed(1)
	x := torch.Randn([]int64{benchB, benchV, benchIn}, torch.Float32, torch.CPU)
	y := torch.Randint(0, 10, []int64{benchB}, torch.Int64, torch.CPU)
	model := torch.NewMLP(benchIn, benchHidden, benchOut, false)
	params := model.Parameters()
	opt, err := nn.NewOptimizer(nn.OptimConfig{Name: "sgd", LR: 0.1, Momentum: 0.9}, params)
	if err != nil {
		return err
	}
	if err := g.BroadcastParameters(params, 0); err != nil {
		return err
	}
	n := int64(benchB / g.WorldSize())
	start := int64(g.Rank()) * n
	xl, yl := x.Narrow(0, start, n).Contiguous(), y.Narrow(0, start, n).Contiguous()
	var steps, comm []time.Duration
	var bytesPerStep int64
	for i := 0; i < benchWarmup+benchSteps; i++ {
		if err := g.Barrier(); err != nil { // steps start together, so rank 0's clock covers both
			return err
		}
		t0 := time.Now()
		var c time.Duration
		torch.WithScope(func() {
			z := model.Forward(xl.Reshape(n*benchV, benchIn)).Reshape(n, benchV, benchOut)
			tg := time.Now()
			var zAll, yAll *torch.Tensor
			if zAll, err = g.AllGatherWithGrad(z); err != nil {
				return
			}
			if yAll, err = g.AllGather(yl); err != nil {
				return
			}
			c += time.Since(tg)
			supcon.SupCon(supcon.Views{Z: zAll, Labels: yAll, AnchorStart: start, AnchorCount: n}, 0.1, supcon.DenomAll).Backward()
			ta := time.Now()
			if bytesPerStep, err = g.AllReduceGradients(params); err != nil {
				return
			}
			c += time.Since(ta)
			opt.Step(0.1)
			opt.ZeroGrad()
		})
		if err != nil {
			return err
		}
		if i >= benchWarmup {
			steps = append(steps, time.Since(t0))
			comm = append(comm, c)
		}
	}
	if g.Rank() == 0 {
		fmt.Printf("BENCH procs=%d threads=%d local_batch=%d step_ms=%.2f comm_ms=%.2f allreduce_bytes=%d\n",
			g.WorldSize(), torch.NumThreads(), n, ms(median(steps)), ms(median(comm)), bytesPerStep)
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func TestBenchStepTime(t *testing.T) {
	if os.Getenv("SPREADTRAIN_DIST_BENCH") == "" {
		t.Skip("set SPREADTRAIN_DIST_BENCH=1 (bench/dist.sh)")
	}
	skipWithoutGloo(t)
	for _, c := range []struct{ procs, threads int }{{1, 1}, {1, 2}, {2, 1}} {
		var out bytes.Buffer
		err := SpawnWith(context.Background(), SpawnConfig{NProc: c.procs, Stdout: &out, Stderr: &out, Timeout: 5 * time.Minute,
			Env: []string{workerVar + "=bench", "SPREADTRAIN_DIST_BENCH_THREADS=" + strconv.Itoa(c.threads)}})
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if i := strings.Index(line, "BENCH "); i >= 0 {
				t.Log(line[i+len("BENCH "):])
			}
		}
	}
}
