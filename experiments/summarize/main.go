// Command summarize turns the committed results of the experiment scripts into every results table
// the project publishes: experiments/results/<suite>.md, and the blocks of README.md between
// `<!-- summarize:NAME -->` and `<!-- /summarize:NAME -->`. A table is never edited by hand, so each
// number in it comes back from the files under experiments/results/runs (config.yaml, the metrics
// file, the last metrics.jsonl line and version.txt of every run, written by experiments/lib.sh).
//
//	go run ./experiments/summarize           rewrite the tables
//	go run ./experiments/summarize -check    exit 1, naming the file, if a committed table is stale
//	go run ./experiments/summarize -select select-mnist-demo   print one selection's table and choice
//
// Suites: seeds-CONFIG (experiments/seeds.sh: methods at seeds nobody tuned on, scored on test),
// select-CONFIG (experiments/select.sh: candidates scored on validation), cpu and gpu
// (experiments/run.sh: DATASET/METHOD rows).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spreadtrain/spreadtrain/internal/atomicfile"
	"github.com/spreadtrain/spreadtrain/pkg/eval"
)

func main() {
	root := flag.String("root", ".", "the repository")
	check := flag.Bool("check", false, "compare instead of writing; exit 1 if a committed table is stale")
	sel := flag.String("select", "", "print the table and the choice of one selection suite")
	flag.Parse()
	if err := run(*root, *check, *sel); err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(1)
	}
}

func run(root string, check bool, sel string) error {
	results, err := loadResults(filepath.Join(root, resultsDir))
	if err != nil {
		return err
	}
	if sel != "" {
		block, ok := selectionTable(results, sel)
		if !ok {
			return fmt.Errorf("no results for %s under %s", sel, resultsDir)
		}
		fmt.Print(block)
		return nil
	}
	files, err := render(root, results)
	if err != nil {
		return err
	}
	var stale []string
	for _, f := range files {
		old, _ := os.ReadFile(filepath.Join(root, f.path))
		if bytes.Equal(old, f.content) {
			continue
		}
		if check {
			stale = append(stale, f.path)
			continue
		}
		content := f.content
		if err := atomicfile.Write(filepath.Join(root, f.path), 0o644, func(w io.Writer) error { _, err := w.Write(content); return err }); err != nil {
			return err
		}
		fmt.Println("wrote", f.path)
	}
	if len(stale) > 0 {
		return fmt.Errorf("stale tables in %s: run go run ./experiments/summarize", strings.Join(stale, ", "))
	}
	return nil
}

// resultsDir holds one folder per suite, then per row key (a method, a candidate, or DATASET/METHOD),
// then seed<N>.
const resultsDir = "experiments/results/runs"

// result is one evaluated run as committed.
type result struct {
	suite, key string
	seed       int
	val        bool // scored on the validation split (metrics_val.json)
	report     eval.Report
	method     methodOf
	version    string
	last       map[string]float64 // the last step record's values (loss terms, lr) from last_metrics.jsonl
}

// methodOf is the part of a run's config.yaml the tables show.
type methodOf struct {
	Method struct {
		Name  string  `yaml:"name"`
		Alpha float64 `yaml:"alpha"`
		Beta  float64 `yaml:"beta"`
		Gamma float64 `yaml:"gamma"`
	} `yaml:"method"`
}

var seedDir = regexp.MustCompile(`^seed(\d+)$`)

func loadResults(dir string) ([]result, error) {
	var out []result
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		m := seedDir.FindStringSubmatch(d.Name())
		if m == nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(path))
		parts := strings.SplitN(filepath.ToSlash(rel), "/", 2)
		if len(parts) != 2 {
			return fmt.Errorf("%s: want %s/SUITE/KEY/seedN", path, resultsDir)
		}
		r := result{suite: parts[0], key: parts[1]}
		r.seed, _ = strconv.Atoi(m[1])
		metrics := filepath.Join(path, "metrics.json")
		if _, err := os.Stat(metrics); err != nil {
			metrics, r.val = filepath.Join(path, "metrics_val.json"), true
		}
		raw, err := os.ReadFile(metrics)
		if err != nil {
			return fmt.Errorf("%s: no metrics.json or metrics_val.json: %w", path, err)
		}
		if err := json.Unmarshal(raw, &r.report); err != nil {
			return fmt.Errorf("%s: %w", metrics, err)
		}
		raw, err = os.ReadFile(filepath.Join(path, "config.yaml"))
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(raw, &r.method); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(path, "config.yaml"), err)
		}
		if v, err := os.ReadFile(filepath.Join(path, "version.txt")); err == nil {
			r.version = strings.TrimSpace(string(v))
		}
		if r.last, err = lastStep(filepath.Join(path, "last_metrics.jsonl")); err != nil {
			return err
		}
		out = append(out, r)
		return filepath.SkipDir
	})
	if os.IsNotExist(err) {
		return nil, nil
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.suite != b.suite {
			return a.suite < b.suite
		}
		if a.key != b.key {
			return a.key < b.key
		}
		return a.seed < b.seed
	})
	return out, err
}

// lastStep reads the values of the last step record of a last_metrics.jsonl (nil when absent).
func lastStep(path string) (map[string]float64, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var values map[string]float64
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Kind   string             `json:"kind"`
			Values map[string]float64 `json:"values"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if rec.Kind == "step" {
			values = rec.Values
		}
	}
	return values, nil
}

// A metric is one column: eval.Headlines, the one extractor of headline numbers (also `compare`'s).
type metric eval.Headline

func headline(name string) metric {
	for _, h := range eval.Headlines {
		if h.Name == name {
			return metric(h)
		}
	}
	panic("summarize: no headline " + name)
}

var (
	coarseProbe = headline("coarse probe")
	fineProbe   = headline("fine probe")
	intraCos    = headline("intra-class cos")
)

func (m metric) format(v float64) string {
	if m.Percent {
		return fmt.Sprintf("%.1f", 100*v)
	}
	return fmt.Sprintf("%.3f", v)
}

// cell is mean ± sample standard deviation (just the value for one seed).
func (m metric) cell(vs []float64) string {
	if len(vs) == 0 {
		return "-"
	}
	mean, sd := meanStd(vs)
	if len(vs) == 1 {
		return m.format(mean)
	}
	return m.format(mean) + " ± " + m.format(sd)
}

func meanStd(v []float64) (mean, sd float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	if len(v) > 1 {
		sd = math.Sqrt(sd / float64(len(v)-1))
	}
	return mean, sd
}

func values(rs []result, m metric) []float64 {
	var out []float64
	for i := range rs {
		if v := m.Of(&rs[i].report); v != nil {
			out = append(out, *v)
		}
	}
	return out
}

// bySuite groups results by suite, then row key, keeping the keys' first-seen order.
func bySuite(results []result) map[string]*suite {
	out := map[string]*suite{}
	for _, r := range results {
		s := out[r.suite]
		if s == nil {
			s = &suite{name: r.suite, rows: map[string][]result{}}
			out[r.suite] = s
		}
		if _, ok := s.rows[r.key]; !ok {
			s.keys = append(s.keys, r.key)
		}
		s.rows[r.key] = append(s.rows[r.key], r)
	}
	return out
}

type suite struct {
	name string
	keys []string
	rows map[string][]result
}

// versions says which code produced a suite (every distinct version.txt).
func (s *suite) versions() string {
	seen := map[string]bool{}
	var vs []string
	for _, k := range s.keys {
		for _, r := range s.rows[k] {
			v := r.version
			if v == "" {
				v = "unrecorded"
			}
			if !seen[v] {
				seen[v] = true
				vs = append(vs, v)
			}
		}
	}
	sort.Strings(vs)
	return strings.Join(vs, "; ")
}

// methodTable is one row per key: n seeds and mean ± sd of each metric that any row has.
func methodTable(s *suite, keys []string, label string) string {
	var cols []metric
	for _, h := range eval.Headlines {
		m := metric(h)
		for _, k := range keys {
			if len(values(s.rows[k], m)) > 0 {
				cols = append(cols, m)
				break
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| %s | seeds |", label)
	for _, m := range cols {
		fmt.Fprintf(&b, " %s |", m.Name)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(cols)) + "\n")
	for _, k := range keys {
		rs := s.rows[k]
		fmt.Fprintf(&b, "| %s | %s |", k, seedList(rs))
		for _, m := range cols {
			fmt.Fprintf(&b, " %s |", m.cell(values(rs, m)))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func seedList(rs []result) string {
	var s []string
	for _, r := range rs {
		s = append(s, strconv.Itoa(r.seed))
	}
	return strings.Join(s, ", ")
}

// pair is one seed of method against baseline (same seed: same data subset, split and
// initialisation draw), test accuracies.
type pair struct {
	seed                                           int
	baseCoarse, baseFine, methodCoarse, methodFine float64
}

func (p pair) lift() float64 { return p.methodFine - p.baseFine }
func (p pair) diff() float64 { return p.methodCoarse - p.baseCoarse }

// pairs matches method's runs with baseline's by seed, keeping the seeds both have probes for.
func pairs(s *suite, baseline, method string) []pair {
	base := map[int]*eval.Report{}
	for i, r := range s.rows[baseline] {
		base[r.seed] = &s.rows[baseline][i].report
	}
	var out []pair
	for i, r := range s.rows[method] {
		br := base[r.seed]
		if br == nil {
			continue
		}
		mr := &s.rows[method][i].report
		bc, bf, mc, mf := coarseProbe.Of(br), fineProbe.Of(br), coarseProbe.Of(mr), fineProbe.Of(mr)
		if bc == nil || bf == nil || mc == nil || mf == nil {
			continue
		}
		out = append(out, pair{r.seed, *bc, *bf, *mc, *mf})
	}
	return out
}

// liftStats are the mean and sample standard deviation of the fine lifts and coarse differences,
// the smallest lift and the largest coarse drop (0 when none dropped).
func liftStats(ps []pair) (ml, sl, md, sd, minLift, maxDrop float64) {
	var lifts, diffs []float64
	for _, p := range ps {
		lifts, diffs = append(lifts, p.lift()), append(diffs, p.diff())
	}
	ml, sl = meanStd(lifts)
	md, sd = meanStd(diffs)
	return ml, sl, md, sd, slicesMin(lifts), math.Max(-slicesMin(diffs), 0)
}

// pairedTable compares method against baseline seed by seed: the claim of the main job is a
// fine-probe lift with the coarse probe kept.
func pairedTable(s *suite, baseline, method string) (string, bool) {
	ps := pairs(s, baseline, method)
	if len(ps) == 0 {
		return "", false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| seed | %[1]s coarse | %[1]s fine | %[2]s coarse | %[2]s fine | fine lift | coarse difference |\n|---|---|---|---|---|---|---|\n", baseline, method)
	for _, p := range ps {
		fmt.Fprintf(&b, "| %d | %.1f | %.1f | %.1f | %.1f | %+.1f | %+.1f |\n", p.seed, 100*p.baseCoarse, 100*p.baseFine, 100*p.methodCoarse, 100*p.methodFine, 100*p.lift(), 100*p.diff())
	}
	ml, sl, md, sd, minLift, maxDrop := liftStats(ps)
	fmt.Fprintf(&b, "| mean ± sd | | | | | %+.1f ± %.1f | %+.1f ± %.1f |\n", 100*ml, 100*sl, 100*md, 100*sd)
	seeds := "seeds"
	if len(ps) == 1 {
		seeds = "seed"
	}
	fmt.Fprintf(&b, "\nSmallest fine lift %+.1f points; largest coarse drop %.1f points (%d %s).\n", 100*minLift, 100*maxDrop, len(ps), seeds)
	return b.String(), true
}

// liftOverview is one row per dataset of a DATASET/METHOD suite: method against baseline, paired by
// seed, with the beta the method ran at and the cluster ARI of both.
func liftOverview(s *suite, baseline, method string) (string, bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "| dataset | %[2]s beta | seeds | %[1]s fine | %[2]s fine | fine lift | smallest lift | coarse difference | largest coarse drop | cluster ARI %[1]s / %[2]s |\n|---|---|---|---|---|---|---|---|---|---|\n", baseline, method)
	ari := headline("cluster ARI")
	any := false
	for _, ds := range datasets(s) {
		sub := datasetSuite(s, ds)
		ps := pairs(sub, baseline, method)
		if len(ps) == 0 {
			continue
		}
		any = true
		var bf, mf []float64
		var seeds []string
		for _, p := range ps {
			bf, mf = append(bf, p.baseFine), append(mf, p.methodFine)
			seeds = append(seeds, strconv.Itoa(p.seed))
		}
		ml, sl, md, sd, minLift, maxDrop := liftStats(ps)
		fmt.Fprintf(&b, "| %s | %g | %s | %s | %s | %+.1f ± %.1f | %+.1f | %+.1f ± %.1f | %.1f | %s / %s |\n", ds, sub.rows[method][0].method.Method.Beta,
			strings.Join(seeds, ", "), fineProbe.cell(bf), fineProbe.cell(mf), 100*ml, 100*sl, 100*minLift, 100*md, 100*sd, 100*maxDrop,
			ari.cell(values(sub.rows[baseline], ari)), ari.cell(values(sub.rows[method], ari)))
	}
	return b.String(), any
}

func slicesMin(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Min(m, x)
	}
	return m
}

// selectionTable is experiments/select.sh's table and choice: among the candidates whose mean
// validation coarse probe is within selectionSlack of SupCon's, the best mean validation fine probe.
func selectionTable(results []result, name string) (string, bool) {
	s, ok := bySuite(results)[name]
	if !ok {
		return "", false
	}
	var b strings.Builder
	b.WriteString("| candidate | alpha | beta | seeds | val coarse probe | val fine probe | val intra-class cos | final SupCon term |\n|---|---|---|---|---|---|---|---|\n")
	supconCoarse := math.NaN()
	if rs, ok := s.rows["supcon"]; ok {
		supconCoarse, _ = meanStd(values(rs, coarseProbe))
	}
	best, bestFine := "", math.Inf(-1)
	for _, k := range s.keys {
		rs := s.rows[k]
		m := rs[0].method.Method
		var sc []float64
		for _, r := range rs {
			if v, ok := r.last["supcon"]; ok {
				sc = append(sc, v)
			}
		}
		supconTerm := "-"
		if len(sc) > 0 {
			mean, _ := meanStd(sc)
			supconTerm = fmt.Sprintf("%.2f", mean)
		}
		fmt.Fprintf(&b, "| %s | %g | %g | %s | %s | %s | %s | %s |\n", k, m.Alpha, m.Beta, seedList(rs),
			coarseProbe.cell(values(rs, coarseProbe)), fineProbe.cell(values(rs, fineProbe)), intraCos.cell(values(rs, intraCos)), supconTerm)
		if k == "supcon" {
			continue
		}
		c, _ := meanStd(values(rs, coarseProbe))
		f, _ := meanStd(values(rs, fineProbe))
		if !(c >= supconCoarse-selectionSlack) {
			continue
		}
		if f > bestFine {
			best, bestFine = k, f
		}
	}
	if best == "" {
		b.WriteString("\nNo candidate kept SupCon's validation coarse probe within 1 point.\n")
	} else {
		m := s.rows[best][0].method.Method
		fmt.Fprintf(&b, "\nChosen on validation: **%s** (alpha %g, beta %g): the best validation fine probe among the candidates whose validation coarse probe is within %.0f point of SupCon's (%.1f).\n",
			best, m.Alpha, m.Beta, 100*selectionSlack, 100*supconCoarse)
	}
	return b.String(), true
}

const selectionSlack = 0.01

type output struct {
	path    string
	content []byte
}

// blocks are the generated tables by name: each suite's own, and the README's.
func blocks(results []result) (map[string]string, []*suite) {
	suites := bySuite(results)
	var names []string
	for n := range suites {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]string{}
	var ordered []*suite
	for _, n := range names {
		s := suites[n]
		ordered = append(ordered, s)
		switch {
		case strings.HasPrefix(n, "select-"):
			out[n], _ = selectionTable(results, n)
		case strings.HasPrefix(n, "seeds-"):
			var b strings.Builder
			out[n+":methods"] = methodTable(s, s.keys, "method")
			b.WriteString(out[n+":methods"])
			for _, p := range [][2]string{{"supcon", "thanos"}, {"supcon-2b", "thanos-2b"}} {
				if t, ok := pairedTable(s, p[0], p[1]); ok {
					out[n+":"+p[1]] = t
					fmt.Fprintf(&b, "\n%s against %s, seed by seed (test accuracy, %%):\n\n%s", p[1], p[0], t)
				}
			}
			out[n] = b.String()
		default: // DATASET/METHOD rows: per dataset, the methods and Thanos against SupCon seed by seed
			var b strings.Builder
			for _, ds := range datasets(s) {
				sub := datasetSuite(s, ds)
				t := methodTable(sub, sub.keys, "method")
				for _, p := range [][2]string{{"supcon", "thanos"}, {"supcon-2b", "thanos-2b"}} {
					if pt, ok := pairedTable(sub, p[0], p[1]); ok {
						t += fmt.Sprintf("\n%s against %s, seed by seed (test accuracy, %%):\n\n%s", p[1], p[0], pt)
					}
				}
				out[n+":"+ds] = t
				fmt.Fprintf(&b, "## %s\n\n%s\n", ds, t)
			}
			out[n] = b.String()
			if t, ok := liftOverview(s, "supcon", "thanos"); ok {
				out[n+":lift"] = t
				out[n] = fmt.Sprintf("thanos against supcon, paired by seed (test accuracy, %%):\n\n%s\n%s", t, out[n])
			}
		}
	}
	return out, ordered
}

// datasets lists the DATASET parts of a suite's DATASET/METHOD keys, in first-seen order.
func datasets(s *suite) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range s.keys {
		if d, _, _ := strings.Cut(k, "/"); !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// datasetSuite is the part of a DATASET/METHOD suite for one dataset, keyed by method.
func datasetSuite(s *suite, ds string) *suite {
	sub := &suite{name: s.name, rows: map[string][]result{}}
	for _, k := range s.keys {
		if d, m, _ := strings.Cut(k, "/"); d == ds {
			sub.keys = append(sub.keys, m)
			sub.rows[m] = s.rows[k]
		}
	}
	return sub
}

var readmeBlock = regexp.MustCompile(`(?s)(<!-- summarize:([a-z0-9:.-]+) -->\n).*?(<!-- /summarize:([a-z0-9:.-]+) -->)`)

// render produces every generated file: one Markdown page per suite and README.md with its blocks
// replaced. A README block naming a table that does not exist is an error.
func render(root string, results []result) ([]output, error) {
	tables, suites := blocks(results)
	var outs []output
	for _, s := range suites {
		var b strings.Builder
		fmt.Fprintf(&b, "# Results: %s\n\nGenerated by `go run ./experiments/summarize` from %s/%s (do not edit). Test accuracies in percent, mean ± sample standard deviation over the seeds listed (metrics_val.json runs: validation accuracies); intra-class cosine of the evaluated split's embeddings; cluster ARI: k-means within each coarse class of the training embeddings (k by silhouette), scored against the true groups where the data has them, else the fine labels (size-weighted mean of the per-class adjusted Rand index).\n\nProduced by: %s.\n\n%s",
			s.name, resultsDir, s.name, s.versions(), tables[s.name])
		outs = append(outs, output{path: filepath.Join("experiments/results", s.name+".md"), content: []byte(b.String())})
	}
	readmePath := filepath.Join(root, "README.md")
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		return nil, err
	}
	var missing []string
	readme := readmeBlock.ReplaceAllStringFunc(string(raw), func(block string) string {
		m := readmeBlock.FindStringSubmatch(block)
		t, ok := tables[m[2]]
		if !ok || m[2] != m[4] {
			missing = append(missing, m[2])
			return block
		}
		return m[1] + t + m[3]
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("README.md: no results for the block(s) %s", strings.Join(missing, ", "))
	}
	outs = append(outs, output{path: "README.md", content: []byte(readme)})
	return outs, nil
}
