package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/eval"
)

// Every committed results table (experiments/results/*.md, README.md's generated blocks) is exactly
// what summarize prints from the committed runs: a table edited by hand, or results added without
// regenerating the tables, fails here.
func TestCommittedTablesAreCurrent(t *testing.T) {
	if err := run("../..", true, ""); err != nil {
		t.Fatal(err)
	}
}

func withAcc(coarse, fine float64) eval.Report {
	return eval.Report{CoarseProbe: &eval.ProbeResult{TestAcc: coarse}, FineProbe: &eval.ProbeResult{TestAcc: fine}}
}

// The selection rule, on numbers worked by hand: SupCon's validation coarse probe is 0.96, so a
// candidate needs >= 0.95; b1 has the best fine probe but loses too much coarse accuracy, b0.3 is
// the best of those left.
func TestSelectionKeepsCoarseWithinOnePoint(t *testing.T) {
	mk := func(key string, alpha, beta, coarse, fine float64) result {
		r := result{suite: "select-x", key: key, seed: 100, val: true, report: withAcc(coarse, fine)}
		r.method.Method.Alpha, r.method.Method.Beta = alpha, beta
		return r
	}
	results := []result{mk("supcon", 1, 0, 0.96, 0.80), mk("thanos-b0.1", 0.8, 0.1, 0.955, 0.86),
		mk("thanos-b0.3", 0.8, 0.3, 0.950, 0.88), mk("thanos-b1", 0.8, 1, 0.90, 0.95)}
	table, ok := selectionTable(results, "select-x")
	if !ok {
		t.Fatal("no table")
	}
	if !strings.Contains(table, "**thanos-b0.3** (alpha 0.8, beta 0.3)") {
		t.Fatalf("wrong choice:\n%s", table)
	}
}

// The paired table's lifts and their mean and sample standard deviation, checked by hand:
// lifts 0.05 and 0.03 -> mean 4.0, sd sqrt(((1)^2 + (1)^2) / 1) = 1.4 points.
func TestPairedTable(t *testing.T) {
	s := &suite{name: "seeds-x", keys: []string{"supcon", "thanos"}, rows: map[string][]result{
		"supcon": {{seed: 1, report: withAcc(0.96, 0.85)}, {seed: 2, report: withAcc(0.95, 0.84)}},
		"thanos": {{seed: 1, report: withAcc(0.955, 0.90)}, {seed: 2, report: withAcc(0.95, 0.87)}},
	}}
	table, ok := pairedTable(s, "supcon", "thanos")
	if !ok {
		t.Fatal("no table")
	}
	for _, want := range []string{"| 1 | 96.0 | 85.0 | 95.5 | 90.0 | +5.0 | -0.5 |", "| 2 | 95.0 | 84.0 | 95.0 | 87.0 | +3.0 | +0.0 |",
		"+4.0 ± 1.4", "Smallest fine lift +3.0 points; largest coarse drop 0.5 points (2 seeds)."} {
		if !strings.Contains(table, want) {
			t.Errorf("missing %q in\n%s", want, table)
		}
	}
	if m, sd := meanStd([]float64{0.05, 0.03}); math.Abs(m-0.04) > 1e-12 || math.Abs(sd-math.Sqrt(2e-4)) > 1e-12 {
		t.Errorf("meanStd = %v, %v", m, sd)
	}
}

// A README block that names a table nobody generated is an error, not a silently kept stale table.
func TestUnknownREADMEBlockIsAnError(t *testing.T) {
	dir := t.TempDir()
	readme := "x\n<!-- summarize:seeds-nothing -->\nold\n<!-- /summarize:seeds-nothing -->\n"
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := render(dir, nil); err == nil || !strings.Contains(err.Error(), "seeds-nothing") {
		t.Fatalf("err = %v", err)
	}
}

// The CPU suite's overview pairs each dataset's runs by seed, worked by hand: on a, lifts +2 and +4
// (mean 3.0, sd 1.4), coarse -1 and +1; b has no thanos run and gets no row.
func TestLiftOverviewPairsEachDataset(t *testing.T) {
	mk := func(key string, seed int, beta, coarse, fine float64) result {
		r := result{suite: "cpu", key: key, seed: seed, report: withAcc(coarse, fine)}
		r.method.Method.Beta = beta
		return r
	}
	s := bySuite([]result{mk("a/supcon", 0, 0, 0.90, 0.70), mk("a/supcon", 1, 0, 0.90, 0.70),
		mk("a/thanos", 0, 0.3, 0.89, 0.72), mk("a/thanos", 1, 0.3, 0.91, 0.74), mk("b/supcon", 0, 0, 0.5, 0.5)})["cpu"]
	table, ok := liftOverview(s, "supcon", "thanos")
	if !ok {
		t.Fatal("no table")
	}
	want := "| a | 0.3 | 0, 1 | 70.0 ± 0.0 | 73.0 ± 1.4 | +3.0 ± 1.4 | +2.0 | +0.0 ± 1.4 | 1.0 | - / - |"
	if !strings.Contains(table, want) || strings.Contains(table, "| b |") {
		t.Errorf("want the row\n%s\nand none for b, got\n%s", want, table)
	}
	// the suite's page has the overview and, under it, each dataset's own section
	page, _ := blocks([]result{mk("a/supcon", 0, 0, 0.90, 0.70), mk("a/thanos", 0, 0.3, 0.89, 0.72), mk("b/supcon", 0, 0, 0.5, 0.5)})
	for _, want := range []string{"thanos against supcon, paired by seed", "## a\n", "## b\n", "| 0 | 90.0 | 70.0 | 89.0 | 72.0 | +2.0 | -1.0 |"} {
		if !strings.Contains(page["cpu"], want) {
			t.Errorf("cpu page lacks %q:\n%s", want, page["cpu"])
		}
	}
}
