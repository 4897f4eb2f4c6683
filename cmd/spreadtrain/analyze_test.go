package main

import (
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/npy"
	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// torchPython returns Debian's python3 with torch (the losses' reference), or skips loudly.
func torchPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("SKIPPING the PyTorch reference check: %s cannot import torch (apt-get install -y python3-torch): %v %s", py, err, out)
	}
	return py
}

// analyze's blockwise losses equal tools/reference/losses.py (PyTorch, float64) and spreadtrain's
// dense path to 1e-9, for two views and for one view (SupCon only: its positives are the other
// samples of the class), with both denominators.
func TestAnalyzeMatchesPyTorchReference(t *testing.T) {
	py := torchPython(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		v     int
		denom string
	}{{"two-views-all", 2, "all"}, {"two-views-negatives", 2, "negatives"}, {"one-view-all", 1, "all"}, {"one-view-negatives", 1, "negatives"}} {
		t.Run(c.name, func(t *testing.T) {
			const n, d, tau, alpha = 150, 6, 0.3, 0.4
			zPath, yPath := filepath.Join(dir, c.name+"_z.npy"), filepath.Join(dir, c.name+"_y.npy")
			var out analysis
			var dense [2]float64
			torch.WithScope(func() {
				torch.ManualSeed(uint64(c.v))
				z := torch.Randn([]int64{n, int64(c.v), d}, torch.Float64, torch.CPU)
				y := torch.Randint(0, 4, []int64{n}, torch.Int64, torch.CPU)
				shape := []int{n, c.v, d}
				if err := npy.WriteFile(zPath, &npy.Array{DType: npy.Float64, Shape: shape, Data: z.Float64s()}); err != nil {
					t.Fatal(err)
				}
				if err := npy.WriteFile(yPath, &npy.Array{DType: npy.Int64, Shape: []int{n}, Data: y.Int64s()}); err != nil {
					t.Fatal(err)
				}
				var err error
				if out, err = analyze(z, y, tau, alpha, supcon.Denominator(c.denom)); err != nil {
					t.Fatal(err)
				}
				v := supcon.Views{Z: z, Labels: y, Path: supcon.PathDense}
				dense[0] = supcon.SupCon(v, tau, supcon.Denominator(c.denom)).Item()
				dense[1] = supcon.CNCE(v, tau).Item()
			})
			script := `
import sys, json, numpy as np, torch
sys.path.insert(0, sys.argv[1])
import losses
z = torch.from_numpy(np.load(sys.argv[2])); y = torch.from_numpy(np.load(sys.argv[3]))
tau, alpha, denom = 0.3, 0.4, sys.argv[4]
r = {"supcon": losses.supcon(z, y, tau, denom).item()}
if z.shape[1] >= 2:
    r["cnce"] = losses.cnce(z, y, tau).item()
    r["spread"] = losses.spread(z, y, tau, alpha, denom).item()
    r["simclr"] = losses.simclr(z, tau).item()
print(json.dumps(r))
`
			raw, err := exec.Command(py, "-c", script, filepath.Join("..", "..", "tools", "reference"), zPath, yPath, c.denom).CombinedOutput()
			if err != nil {
				t.Fatalf("reference: %v\n%s", err, raw)
			}
			var ref map[string]float64
			if err := json.Unmarshal(raw, &ref); err != nil {
				t.Fatalf("reference output %q: %v", raw, err)
			}
			close := func(name string, got *float64, want float64) {
				t.Helper()
				if got == nil {
					t.Fatalf("%s is null, want %.12g", name, want)
				}
				if e := math.Abs(*got-want) / math.Max(math.Abs(want), 1e-3); e > 1e-9 {
					t.Fatalf("%s = %.15g, want %.15g (relative error %.2g)", name, *got, want, e)
				}
			}
			close("supcon vs PyTorch", out.SupCon, ref["supcon"])
			close("supcon vs dense", out.SupCon, dense[0])
			if c.v == 1 {
				if out.CNCE != nil || out.SimCLR != nil || out.Spread != nil {
					t.Fatalf("one view: cnce %v, simclr %v, spread %v, want null", out.CNCE, out.SimCLR, out.Spread)
				}
				for _, k := range []string{"cnce", "simclr", "spread"} {
					if out.NotDefined[k] == "" {
						t.Errorf("one view: no reason given for %s", k)
					}
				}
				return
			}
			close("cnce vs PyTorch", out.CNCE, ref["cnce"])
			close("cnce vs dense", out.CNCE, dense[1])
			close("spread vs PyTorch", out.Spread, ref["spread"])
			close("simclr vs PyTorch", out.SimCLR, ref["simclr"])
			if len(out.NotDefined) != 0 {
				t.Errorf("two views: not_defined %v", out.NotDefined)
			}
		})
	}
}

// One view with alpha 1: L_spread is SupCon, so it is defined.
func TestAnalyzeOneViewAlphaOne(t *testing.T) {
	torch.WithScope(func() {
		z := torch.Randn([]int64{20, 1, 4}, torch.Float64, torch.CPU)
		y := torch.Randint(0, 3, []int64{20}, torch.Int64, torch.CPU)
		out, err := analyze(z, y, 0.5, 1, supcon.DenomAll)
		if err != nil {
			t.Fatal(err)
		}
		if out.Spread == nil || out.SupCon == nil || *out.Spread != *out.SupCon {
			t.Fatalf("spread %v, supcon %v: want equal", out.Spread, out.SupCon)
		}
		if _, ok := out.NotDefined["spread"]; ok {
			t.Errorf("spread listed as not defined: %v", out.NotDefined)
		}
	})
}
