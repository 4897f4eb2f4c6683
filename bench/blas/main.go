// Command blas times the BLAS-bound ops through spreadtrain: a 512x512 float32 matmul, and one
// Linear layer (batch 256, 512 -> 512) forward + backward. bench/blas.sh runs it once per BLAS
// (LD_LIBRARY_PATH picks the libblas.so.3 that libtorch loads) and compares. Prints one JSON line
// with the median times and the BLAS libraries mapped into the process (from /proc/self/maps).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func median(f func(), iters, repeats int) float64 {
	for i := 0; i < max(1, iters/5); i++ {
		f()
	}
	var ts []float64
	for r := 0; r < repeats; r++ {
		t0 := time.Now()
		for i := 0; i < iters; i++ {
			f()
		}
		ts = append(ts, time.Since(t0).Seconds()*1e3/float64(iters))
	}
	sort.Float64s(ts)
	return ts[len(ts)/2]
}

// blasMaps lists the mapped libblas*, liblapack* and libopenblas* files.
func blasMaps() []string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	seen := map[string]bool{}
	var libs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		p := fields[5]
		base := p[strings.LastIndex(p, "/")+1:]
		if (strings.HasPrefix(base, "libblas") || strings.HasPrefix(base, "liblapack") || strings.HasPrefix(base, "libopenblas")) && !seen[p] {
			seen[p] = true
			libs = append(libs, p)
		}
	}
	return libs
}

func main() {
	threads := flag.Int("threads", 1, "libtorch intra-op threads")
	iters := flag.Int("iters", 20, "calls per timed loop")
	repeats := flag.Int("repeats", 5, "timed loops (median)")
	label := flag.String("label", "", "echoed in the output")
	flag.Parse()
	torch.SetNumThreads(*threads)
	torch.ManualSeed(0)
	var mmMs, linMs float64
	err := torch.Catch(func() {
		a := torch.Randn([]int64{512, 512}, torch.Float32, torch.CPU)
		b := torch.Randn([]int64{512, 512}, torch.Float32, torch.CPU)
		mmMs = median(func() { torch.WithScope(func() { a.MM(b) }) }, *iters, *repeats)

		x := torch.Randn([]int64{256, 512}, torch.Float32, torch.CPU)
		lin := torch.NewLinear(512, 512, true)
		params := lin.Parameters()
		linMs = median(func() {
			torch.WithScope(func() {
				for _, p := range params {
					p.Tensor.ZeroGrad()
				}
				lin.Forward(x).Sum().Backward()
			})
		}, *iters, *repeats)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "blas:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(map[string]any{"label": *label, "threads": *threads, "matmul512_ms": mmMs,
		"linear256_fwd_bwd_ms": linMs, "mapped": blasMaps()})
	fmt.Println(string(out))
}
