// Command losses times forward + backward of L_spread (alpha 0.5, V = 2, D = 128, float32, random
// embeddings, 10 classes) through spreadtrain at one size and one SupCon path, and prints one JSON
// line: the median of the repeats in milliseconds and the resident memory before the first loss.
// bench/losses.sh runs it once per (path, size) in its own process and reads that process's peak
// RSS from the kernel, so each size's peak is its own. With -analyze it times what `spreadtrain
// analyze` computes instead: SupCon, cNCE and SimCLR in float64 without gradient. -device cuda runs
// on a GPU (bench/gpu_check.sh reads the device's memory from outside).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func main() {
	m := flag.Int64("m", 4096, "anchors M = samples x 2 views (every row is an anchor)")
	pathName := flag.String("path", "dense", "SupCon path: dense, blockwise or auto")
	block := flag.Int64("block", 0, "blockwise path: anchor rows per block (0: the package's default)")
	repeats := flag.Int("repeats", 3, "timed repeats (after one untimed warm-up)")
	threads := flag.Int("threads", 1, "intra-op threads")
	analyze := flag.Bool("analyze", false, "time analyze's losses (float64, no gradient) instead of training's")
	devName := flag.String("device", "cpu", "cpu or cuda")
	flag.Parse()
	path, err := supcon.ParsePath(*pathName)
	if err != nil || *m < 4 || *m%2 != 0 {
		fmt.Fprintf(os.Stderr, "losses: -path %q, -m %d: want dense, blockwise or auto and an even M >= 4 (%v)\n", *pathName, *m, err)
		os.Exit(2)
	}
	dev, err := torch.ParseDevice(*devName)
	if err != nil {
		fmt.Fprintf(os.Stderr, "losses: -device %q: %v\n", *devName, err)
		os.Exit(2)
	}
	torch.SetNumThreads(*threads)
	torch.ManualSeed(0)
	n := *m / 2
	base := vmRSSMiB()
	var times, cpu []float64
	var loss float64
	for r := 0; r < *repeats+1; r++ {
		torch.WithScope(func() {
			y := torch.Randint(0, 10, []int64{n}, torch.Int64, dev)
			var z, l *torch.Tensor
			var start time.Time
			var startCPU float64
			if *analyze {
				z = torch.Randn([]int64{n, 2, 128}, torch.Float64, dev)
				start, startCPU = time.Now(), cpuSeconds()
				l = analyzeLosses(supcon.Views{Z: z, Labels: y, Path: path, BlockRows: *block})
			} else {
				z = torch.Randn([]int64{n, 2, 128}, torch.Float32, dev).SetRequiresGrad(true)
				start, startCPU = time.Now(), cpuSeconds()
				l = supcon.Spread(supcon.Views{Z: z, Labels: y, Path: path, BlockRows: *block}, 0.5, 0.5, supcon.DenomAll)
				l.Backward()
				z.Grad().Sum().Item()
			}
			loss = l.Item() // also waits for a GPU to finish
			// the first run warms up
			if r > 0 {
				times = append(times, time.Since(start).Seconds()*1e3)
				cpu = append(cpu, (cpuSeconds()-startCPU)*1e3)
			}
		})
	}
	what := "train"
	if *analyze {
		what = "analyze"
	}
	res := map[string]any{"impl": "spreadtrain-" + *pathName, "what": what, "device": *devName, "m": *m,
		"ms": median(times), "cpu_ms": median(cpu), "times_ms": times, "base_rss_mib": base, "loss": loss}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// analyzeLosses is SupCon + cNCE + SimCLR without gradient, as `spreadtrain analyze` computes them
// (supcon.AllTerms: one blockwise pass, or one dense similarity matrix on the dense path).
func analyzeLosses(v supcon.Views) *torch.Tensor {
	var sum *torch.Tensor
	torch.NoGrad(func() {
		sc, cn, sim := supcon.AllTerms(v, 0.5, supcon.DenomAll)
		sum = sc.Add(cn).Add(sim)
	})
	return sum
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// cpuSeconds is the user + system CPU time of this process so far: on a loaded machine it moves far
// less than wall-clock time, which also counts the time other processes held the cores.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// vmRSSMiB is this process's resident memory now (libtorch loaded, no loss computed yet).
func vmRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
