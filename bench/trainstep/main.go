// Command trainstep times one CPU training step of a CIFAR ResNet-18 through spreadtrain's Go API:
// encoder (CIFAR stem, width 1) + linear head to 10 classes, cross-entropy, backward, SGD momentum 0.9
// step, on a fixed random batch. The step is what bench/train_step.py times in PyTorch eager; run
// both through bench/train_step.sh. Prints one JSON line: the per-step times and their median.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func main() {
	threads := flag.Int("threads", 1, "intra-op threads")
	batch := flag.Int64("batch", 64, "batch size")
	warmup := flag.Int("warmup", 2, "untimed steps first")
	steps := flag.Int("steps", 8, "timed steps")
	cpuprofile := flag.String("cpuprofile", "", "write a Go CPU profile of the timed steps here")
	round := flag.Int("round", 0, "round number, echoed in the output")
	lock := flag.Bool("lockthread", false, "pin the stepping goroutine to one OS thread (one OpenMP team)")
	flag.Parse()
	if *lock {
		runtime.LockOSThread()
		lockThread = true
	}
	if err := run(*threads, *batch, *warmup, *steps, *round, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "trainstep:", err)
		os.Exit(1)
	}
}

var lockThread bool

func run(threads int, batch int64, warmup, steps, round int, cpuprofile string) error {
	torch.SetNumThreads(threads)
	torch.ManualSeed(0)
	enc, err := nn.NewEncoder(nn.EncoderConfig{Arch: "resnet18", Stem: "cifar", Width: 1, InChannels: 3})
	if err != nil {
		return err
	}
	head := torch.NewLinear(enc.OutDim, 10, true)
	params := append(nn.Prefixed("encoder", enc.Parameters()), nn.Prefixed("head", head.Parameters())...)
	opt, err := nn.NewOptimizer(nn.OptimConfig{Name: "sgd", LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4}, params)
	if err != nil {
		return err
	}
	x := torch.Randn([]int64{batch, 3, 32, 32}, torch.Float32, torch.CPU)
	y := torch.Randint(0, 10, []int64{batch}, torch.Int64, torch.CPU)

	var loss float64
	step := func() {
		torch.WithScope(func() {
			opt.ZeroGrad()
			logits := head.Forward(enc.Forward(x))
			l := torch.CrossEntropy(logits, y, torch.ReduceMean, 0)
			l.Backward()
			opt.Step(0.1)
			loss = l.Item()
		})
	}
	var times, cpu []float64
	err = torch.Catch(func() {
		for i := 0; i < warmup; i++ {
			step()
		}
		if cpuprofile != "" {
			f, err := os.Create(cpuprofile)
			if err != nil {
				panic(err)
			}
			defer f.Close()
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		for i := 0; i < steps; i++ {
			t0, c0 := time.Now(), cpuMs()
			step()
			times = append(times, time.Since(t0).Seconds()*1e3)
			cpu = append(cpu, cpuMs()-c0)
		}
	})
	if err != nil {
		return err
	}
	out, _ := json.Marshal(map[string]any{"impl": "spreadtrain", "threads": threads, "round": round, "os_threads": osThreads(), "lockthread": lockThread, "batch": batch,
		"ms": median(times), "cpu_ms": median(cpu), "steps_ms": times, "loss": loss, "torch_threads": torch.NumThreads()})
	fmt.Println(string(out))
	return nil
}

// cpuMs is the process's user + system CPU time (all threads), in ms.
func cpuMs() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// osThreads is the number of OS threads of the process (Go's plus libtorch's OpenMP workers).
func osThreads() int {
	ents, _ := os.ReadDir("/proc/self/task")
	return len(ents)
}
