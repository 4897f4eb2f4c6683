package supcon

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/npy"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func TestMain(m *testing.M) {
	torch.SetNumThreads(1)
	os.Exit(m.Run())
}

const fixtures = "../../testdata/losses"

type lossCase struct {
	Name         string   `json:"name"`
	FilePrefix   string   `json:"file_prefix"`
	N            int64    `json:"n"`
	V            int64    `json:"v"`
	D            int64    `json:"d"`
	Tau          float64  `json:"tau"`
	Alpha        float64  `json:"alpha"`
	Denominator  string   `json:"denominator"`
	AnchorOffset int64    `json:"anchor_offset"`
	NumAnchors   int64    `json:"num_anchors"`
	SupCon       *float64 `json:"supcon"`
	CNCE         *float64 `json:"cnce"`
	Spread       *float64 `json:"spread"`
	SimCLR       *float64 `json:"simclr"`
}

func loadNpy(t *testing.T, name string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tensorOf(t *testing.T, a *npy.Array, dtype torch.DType) *torch.Tensor {
	t.Helper()
	shape := make([]int64, len(a.Shape))
	for i, s := range a.Shape {
		shape[i] = int64(s)
	}
	switch a.DType {
	case npy.Int64:
		return torch.FromSlice(a.Data.([]int64), shape...)
	default:
		f, err := a.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		return torch.FromSlice(f, shape...).To(dtype)
	}
}

// relErr is |got - want| / max(|want|, floor), the relative error with a floor for values near 0.
func relErr(got, want, floor float64) float64 {
	return math.Abs(got-want) / math.Max(math.Abs(want), floor)
}

// Every loss and its gradient agree with the independent PyTorch implementation
// (tools/reference/losses.py) on the committed random cases: 1e-6 relative in float64, 1e-4 in
// float32.
func TestLossesMatchPyTorchReference(t *testing.T) { checkReferenceCases(t, PathDense, 0) }

// checkReferenceCases runs every committed PyTorch case on a path, in float64 and float32.
func checkReferenceCases(t *testing.T, path Path, blockRows int64) {
	raw, err := os.ReadFile(filepath.Join(fixtures, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []lossCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("only %d reference cases", len(cases))
	}
	for _, c := range cases {
		for _, dt := range []torch.DType{torch.Float64, torch.Float32} {
			tol := 1e-6
			if dt == torch.Float32 {
				tol = 1e-4
			}
			t.Run(fmt.Sprintf("%s/%v", c.Name, dt), func(t *testing.T) {
				torch.WithScope(func() { checkCase(t, c, dt, tol, path, blockRows) })
			})
		}
	}
}

func checkCase(t *testing.T, c lossCase, dt torch.DType, tol float64, path Path, blockRows int64) {
	z0 := tensorOf(t, loadNpy(t, c.FilePrefix+"_z.npy"), dt)
	y := tensorOf(t, loadNpy(t, c.FilePrefix+"_y.npy"), torch.Int64)
	denom, err := ParseDenominator(c.Denominator)
	if err != nil {
		t.Fatal(err)
	}
	losses := map[string]struct {
		want *float64
		f    func(Views) *torch.Tensor
	}{
		"supcon": {c.SupCon, func(v Views) *torch.Tensor { return SupCon(v, c.Tau, denom) }},
		"cnce":   {c.CNCE, func(v Views) *torch.Tensor { return CNCE(v, c.Tau) }},
		"spread": {c.Spread, func(v Views) *torch.Tensor { return Spread(v, c.Tau, c.Alpha, denom) }},
		"simclr": {c.SimCLR, func(v Views) *torch.Tensor { return SimCLR(v, c.Tau) }},
	}
	for name, l := range losses {
		if l.want == nil {
			t.Fatalf("fixture has no %s value", name)
		}
		z := z0.Detach().Clone().SetRequiresGrad(true)
		v := Views{Z: z, Labels: y, AnchorStart: c.AnchorOffset, AnchorCount: c.NumAnchors, Path: path, BlockRows: blockRows}
		loss := l.f(v)
		got := loss.Item()
		if e := relErr(got, *l.want, 1e-3); e > tol {
			t.Fatalf("%s = %.12g, reference %.12g (relative error %.2g > %g)", name, got, *l.want, e, tol)
		}
		loss.Backward()
		wantGrad, err := loadNpy(t, c.FilePrefix+"_grad_"+name+".npy").Float64s()
		if err != nil {
			t.Fatal(err)
		}
		gotGrad := z.Grad().Float64s()
		// gradient error relative to the gradient's scale: max |diff| / max |ref|
		var maxDiff, maxRef float64
		for i := range wantGrad {
			maxDiff = math.Max(maxDiff, math.Abs(gotGrad[i]-wantGrad[i]))
			maxRef = math.Max(maxRef, math.Abs(wantGrad[i]))
		}
		if maxRef > 0 && maxDiff/maxRef > tol || maxRef == 0 && maxDiff > tol {
			t.Fatalf("d %s / dz: max difference %.3g against max reference %.3g", name, maxDiff, maxRef)
		}
	}
}

func TestNoPositivesGivesZeroNotNaN(t *testing.T) {
	torch.WithScope(func() {
		// one view per sample and every sample its own class: no anchor has a positive
		z := torch.Randn([]int64{4, 1, 8}, torch.Float64, torch.CPU).SetRequiresGrad(true)
		y := torch.FromSlice([]int64{0, 1, 2, 3})
		v := Views{Z: z, Labels: y}
		for name, loss := range map[string]*torch.Tensor{
			"supcon all":       SupCon(v, 0.5, DenomAll),
			"supcon negatives": SupCon(v, 0.5, DenomNegatives),
			"cnce":             CNCE(v, 0.5),
			"simclr":           SimCLR(v, 0.5),
		} {
			if got := loss.Item(); got != 0 {
				t.Fatalf("%s = %v with no positives, want 0", name, got)
			}
			loss.Backward()
			if g := z.Grad(); g != nil && g.IsFinite().All(false).Item() == 0 {
				t.Fatalf("%s: non-finite gradient", name)
			}
			z.ZeroGrad()
		}
	})
}

func TestBadInputsGiveClearErrors(t *testing.T) {
	torch.WithScope(func() {
		z := torch.Randn([]int64{4, 2, 8}, torch.Float32, torch.CPU)
		cases := []struct {
			v    Views
			tau  float64
			want string
		}{
			{Views{Z: z, Labels: torch.FromSlice([]int64{0, 1, 0})}, 0.5, "labels have shape [3]"},
			{Views{Z: z.Reshape(8, 8), Labels: torch.FromSlice([]int64{0, 1, 0, 1})}, 0.5, "want [N, V, D]"},
			{Views{Z: z, Labels: torch.FromSlice([]float32{0, 1, 0, 1})}, 0.5, "int64 or int32"},
			{Views{Z: z, Labels: torch.FromSlice([]int64{0, 1, 0, 1}), AnchorStart: 3, AnchorCount: 2}, 0.5, "anchor rows"},
			{Views{Z: z, Labels: torch.FromSlice([]int64{0, 1, 0, 1})}, 0, "temperature"},
		}
		for _, c := range cases {
			err := torch.Catch(func() { SupCon(c.v, c.tau, DenomAll) })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		}
		bad := z.Clone()
		bad.Narrow(0, 1, 1).Fill(math.NaN())
		if err := (Views{Z: bad, Labels: torch.FromSlice([]int64{0, 1, 0, 1})}).Validate(); err == nil || !strings.Contains(err.Error(), "NaN") {
			t.Errorf("NaN embeddings: %v", err)
		}
		if err := (Views{Z: z, Labels: torch.FromSlice([]int64{0, 1, 0, 1})}).Validate(); err != nil {
			t.Errorf("valid input rejected: %v", err)
		}
		if err := torch.Catch(func() { Spread(Views{Z: z, Labels: torch.FromSlice([]int64{0, 1, 0, 1})}, 0.5, 1.5, DenomAll) }); err == nil {
			t.Error("alpha 1.5 accepted")
		}
	})
}
