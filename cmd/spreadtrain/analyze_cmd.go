package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/spreadtrain/spreadtrain/pkg/eval"
	"github.com/spreadtrain/spreadtrain/pkg/npy"
	"github.com/spreadtrain/spreadtrain/pkg/supcon"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// analysis is analyze's JSON output; losses are null where undefined (cNCE, SimCLR and, unless
// alpha is 1, L_spread need two views of each sample), with the reason in not_defined.
type analysis struct {
	N                int               `json:"n"`
	Views            int               `json:"views"`
	Dim              int               `json:"dim"`
	Temperature      float64           `json:"temperature"`
	Alpha            float64           `json:"alpha"`
	Denominator      string            `json:"denominator"`
	SupCon           *float64          `json:"supcon"`
	CNCE             *float64          `json:"cnce"`
	Spread           *float64          `json:"spread"`
	SimCLR           *float64          `json:"simclr"`
	IntraClassCosine float64           `json:"intra_class_cosine"`
	InterClassCosine float64           `json:"inter_class_cosine"`
	Alignment        *float64          `json:"alignment"`
	Uniformity       float64           `json:"uniformity"`
	NotDefined       map[string]string `json:"not_defined,omitempty"`
}

func analyzeCommand() *cli.Command {
	return &cli.Command{
		Name:  "analyze",
		Usage: "compute the losses and spread diagnostics of saved embeddings (numpy .npy) and print them as JSON",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "embeddings", Usage: "float32/float64 array [N, V, D] (V views) or [N, D]", Required: true},
			&cli.StringFlag{Name: "labels", Usage: "int64/int32 array [N] of class labels", Required: true},
			&cli.Float64Flag{Name: "temperature", Value: 0.5, Usage: "tau"},
			&cli.Float64Flag{Name: "alpha", Value: 0.5, Usage: "L_spread = alpha*SupCon + (1-alpha)*cNCE"},
			&cli.StringFlag{Name: "denominator", Value: "all", Usage: "SupCon denominator: all or negatives"},
		},
		Action: func(c *cli.Context) error {
			denom, err := supcon.ParseDenominator(c.String("denominator"))
			if err != nil {
				return usageError{err}
			}
			tau, alpha := c.Float64("temperature"), c.Float64("alpha")
			if !(tau > 0) || math.IsInf(tau, 0) {
				return badInput("--temperature %v: must be a positive number", tau)
			}
			if !(alpha >= 0 && alpha <= 1) {
				return badInput("--alpha %v: must be in [0, 1]", alpha)
			}
			emb, labels, err := readAnalyzeInputs(c.String("embeddings"), c.String("labels"))
			if err != nil {
				return usageError{err}
			}
			var out analysis
			err = torch.Catch(func() {
				torch.WithScope(func() { out, err = analyze(emb.tensor(), torch.FromSlice(labels), tau, alpha, denom) })
			})
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
}

// embeddings are the values of an [N, V, D] or [N, D] array, read before any tensor exists.
type embeddings struct {
	vals  []float64
	shape []int64
}

// tensor is the embeddings as a float64 [N, V, D] tensor (V = 1 for [N, D]) in the current scope.
func (e embeddings) tensor() *torch.Tensor {
	z := torch.FromSlice(e.vals, e.shape...)
	if len(e.shape) == 2 {
		z = z.Unsqueeze(1)
	}
	return z
}

// readAnalyzeInputs reads and checks the arrays; every problem names the file.
func readAnalyzeInputs(embPath, labelPath string) (embeddings, []int64, error) {
	e, err := npy.ReadFile(embPath)
	if err != nil {
		return embeddings{}, nil, err
	}
	if e.DType != npy.Float32 && e.DType != npy.Float64 {
		return embeddings{}, nil, fmt.Errorf("%s: embeddings are %s, want float32 or float64", embPath, e.DType)
	}
	if len(e.Shape) != 2 && len(e.Shape) != 3 {
		return embeddings{}, nil, fmt.Errorf("%s: embeddings have shape %v, want [N, D] or [N, V, D]", embPath, e.Shape)
	}
	for _, s := range e.Shape {
		if s == 0 {
			return embeddings{}, nil, fmt.Errorf("%s: embeddings have shape %v, an empty dimension", embPath, e.Shape)
		}
	}
	vals, _ := e.Float64s()
	for i, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return embeddings{}, nil, fmt.Errorf("%s: element %d is %v; embeddings must be finite", embPath, i, v)
		}
	}
	l, err := npy.ReadFile(labelPath)
	if err != nil {
		return embeddings{}, nil, err
	}
	if l.DType != npy.Int64 && l.DType != npy.Int32 {
		return embeddings{}, nil, fmt.Errorf("%s: labels are %s, want int64 or int32", labelPath, l.DType)
	}
	if len(l.Shape) != 1 || l.Shape[0] != e.Shape[0] {
		return embeddings{}, nil, fmt.Errorf("%s: labels have shape %v, want [%d] to match %s %v", labelPath, l.Shape, e.Shape[0], embPath, e.Shape)
	}
	labels, _ := l.Int64s()
	for i, y := range labels {
		if y < 0 {
			return embeddings{}, nil, fmt.Errorf("%s: label %d is %d; labels must be >= 0", labelPath, i, y)
		}
	}
	shape := make([]int64, len(e.Shape))
	for i, s := range e.Shape {
		shape[i] = int64(s)
	}
	return embeddings{vals: vals, shape: shape}, labels, nil
}

// analyze computes the losses in one blockwise pass under no-grad (memory linear in N: no [NV, NV]
// matrix is held) and the spread diagnostics, all in float64.
func analyze(z, labels *torch.Tensor, tau, alpha float64, denom supcon.Denominator) (analysis, error) {
	n, v, d := z.Size(0), z.Size(1), z.Size(2)
	out := analysis{N: int(n), Views: int(v), Dim: int(d), Temperature: tau, Alpha: alpha, Denominator: string(denom)}
	views := supcon.Views{Z: z, Labels: labels, Path: supcon.PathBlockwise}
	val := func(t *torch.Tensor) *float64 { x := t.Item(); return &x }
	var sc, cn, sim *torch.Tensor
	torch.NoGrad(func() { sc, cn, sim = supcon.AllTerms(views, tau, denom) })
	out.SupCon = val(sc)
	if v >= 2 {
		out.CNCE, out.SimCLR = val(cn), val(sim)
		out.Spread = val(sc.MulScalar(alpha).Add(cn.MulScalar(1 - alpha)))
	} else {
		why := "needs >= 2 views per sample: its positives are the anchor's other views, and the embeddings have one"
		out.NotDefined = map[string]string{"cnce": why, "simclr": why}
		if alpha == 1 {
			out.Spread = out.SupCon
		} else {
			out.NotDefined["spread"] = fmt.Sprintf("alpha %v weighs cNCE, which %s", alpha, why)
		}
	}
	in := eval.SpreadInput{X: z.Select(1, 0), Labels: labels.Int64s()}
	if v >= 2 {
		in.View1, in.View2 = z.Select(1, 0), z.Select(1, 1)
	}
	diag, err := eval.SpreadDiagnostics(in, eval.SpreadConfig{})
	if err != nil {
		return out, err
	}
	out.IntraClassCosine, out.InterClassCosine = diag.IntraClassCosine, diag.InterClassCosine
	out.Alignment, out.Uniformity = diag.Alignment, diag.Uniformity
	return out, nil
}
