package supcon

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// The compatibility mode reproduces the reference code's golden values (METHOD.md).
func TestCompatGoldenValues(t *testing.T) {
	view0 := []float64{1.0, 0.2, -0.3, 0.8, -0.1, 0.5, 0.3, 0.9, 0.1, -0.7, 0.4, 0.6, -0.2, -0.8, 0.9, 0.5, 0.5, -1.2}
	view1 := []float64{0.9, 0.3, -0.1, 1.1, 0.0, 0.4, 0.2, 1.0, 0.3, -0.6, 0.2, 0.8, -0.4, -0.9, 0.7, 0.6, 0.3, -1.0}
	torch.WithScope(func() {
		z := torch.Stack([]*torch.Tensor{torch.FromSlice(view0, 6, 3), torch.FromSlice(view1, 6, 3)}, 1)
		v := Views{Z: z, Labels: torch.FromSlice([]int64{0, 0, 0, 1, 1, 2})}
		c := Compat(v, 0.5, CompatOptions{})
		nc := Compat(v, 0.5, CompatOptions{NoClamp: true})
		for name, got := range map[string]struct{ got, want float64 }{
			"supcon":         {c.SupCon.Item(), 1.1872997920},
			"supcon noclamp": {nc.SupCon.Item(), 0.6505682049},
			"spread 0.5":     {c.Spread(0.5).Item(), 0.7927659909},
			"spread 0.25":    {c.Spread(0.25).Item(), 0.5954990904},
			"simclr":         {c.SimCLR.Item(), 1.6762165165},
		} {
			if e := relErr(got.got, got.want, 1e-3); e > 1e-9 {
				t.Errorf("%s = %.10f, reference code %.10f", name, got.got, got.want)
			}
		}
	})
}

type compatCase struct {
	Name          string  `json:"name"`
	FilePrefix    string  `json:"file_prefix"`
	Tau           float64 `json:"tau"`
	LCNorm        bool    `json:"lc_norm"`
	SupCon        float64 `json:"supcon"`
	SupConNoClamp float64 `json:"supcon_noclamp"`
	CNCE          float64 `json:"cnce"`
	Spread05      float64 `json:"spread_alpha_0_5"`
	Spread025     float64 `json:"spread_alpha_0_25"`
	SimCLR        float64 `json:"simclr"`
	SimCLRNoClamp float64 `json:"simclr_noclamp"`
}

// Values and gradients agree with the PyTorch reference of the reference code's variant on random
// cases, with its norm quirk on and off.
func TestCompatMatchesPyTorchReference(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(fixtures, "compat.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []compatCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			torch.WithScope(func() {
				h0 := tensorOf(t, loadNpy(t, c.FilePrefix+"_h0.npy"), torch.Float64).SetRequiresGrad(true)
				h1 := tensorOf(t, loadNpy(t, c.FilePrefix+"_h1.npy"), torch.Float64).SetRequiresGrad(true)
				y := tensorOf(t, loadNpy(t, c.FilePrefix+"_y.npy"), torch.Int64)
				v := Views{Z: torch.Stack([]*torch.Tensor{h0, h1}, 1), Labels: y}
				opts := CompatOptions{NoLCNorm: !c.LCNorm}
				l := Compat(v, c.Tau, opts)
				opts.NoClamp = true
				nc := Compat(v, c.Tau, opts)
				spread := l.Spread(0.5)
				for name, g := range map[string][2]float64{
					"supcon": {l.SupCon.Item(), c.SupCon}, "supcon_noclamp": {nc.SupCon.Item(), c.SupConNoClamp},
					"cnce": {l.CNCE.Item(), c.CNCE}, "spread 0.5": {spread.Item(), c.Spread05},
					"spread 0.25": {l.Spread(0.25).Item(), c.Spread025}, "simclr": {l.SimCLR.Item(), c.SimCLR},
					"simclr_noclamp": {nc.SimCLR.Item(), c.SimCLRNoClamp},
				} {
					if e := relErr(g[0], g[1], 1e-3); e > 1e-9 {
						t.Errorf("%s = %.12g, reference %.12g", name, g[0], g[1])
					}
				}
				spread.Backward()
				for i, h := range []*torch.Tensor{h0, h1} {
					want, err := loadNpy(t, fmt.Sprintf("%s_grad_spread_h%d.npy", c.FilePrefix, i)).Float64s()
					if err != nil {
						t.Fatal(err)
					}
					got := h.Grad().Float64s()
					for j := range want {
						if math.Abs(got[j]-want[j]) > 1e-9*(1+math.Abs(want[j])) {
							t.Fatalf("d spread / d h%d [%d] = %v, reference %v", i, j, got[j], want[j])
						}
					}
				}
			})
		})
	}
}
