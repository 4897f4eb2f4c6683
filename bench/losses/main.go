// Command losses times forward + backward of L_spread (alpha 0.5, V = 2, D = 128) through
// spreadtrain at several batch sizes and prints one JSON line per size (median of the repeats).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func main() {
	sizes := flag.String("n", "256,1024,4096", "batch sizes")
	repeats := flag.Int("repeats", 5, "timed repeats per size")
	threads := flag.Int("threads", 1, "intra-op threads")
	flag.Parse()
	torch.SetNumThreads(*threads)
	torch.ManualSeed(0)
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad -n:", err)
			os.Exit(2)
		}
		var times []float64
		for r := 0; r < *repeats+1; r++ {
			torch.WithScope(func() {
				z := torch.Randn([]int64{n, 2, 128}, torch.Float32, torch.CPU).SetRequiresGrad(true)
				y := torch.Randint(0, 10, []int64{n}, torch.Int64, torch.CPU)
				start := time.Now()
				supcon.Spread(supcon.Views{Z: z, Labels: y}, 0.5, 0.5, supcon.DenomAll).Backward()
				z.Grad().Sum().Item()
				if r > 0 { // the first run warms up
					times = append(times, time.Since(start).Seconds()*1e3)
				}
			})
		}
		sort.Float64s(times)
		out, _ := json.Marshal(map[string]any{"impl": "spreadtrain", "n": n, "ms": times[len(times)/2]})
		fmt.Println(string(out))
	}
}
