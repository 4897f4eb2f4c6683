package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/spreadtrain/spreadtrain/pkg/eval"
	"github.com/spreadtrain/spreadtrain/pkg/train"
)

func embedCommand() *cli.Command {
	return &cli.Command{
		Name:  "embed",
		Usage: "write a split's embeddings (embeddings.npy) and labels (labels.npy, fine_labels.npy, groups.npy)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "run folder", Required: true},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "train (without the validation part), val or test"},
			&cli.StringFlag{Name: "out", Usage: "output folder", Required: true},
			checkpointFlag(), dataRootFlag(),
		},
		Action: func(c *cli.Context) error {
			n, err := train.Embed(train.EmbedOptions{RunDir: c.String("run"), DataRoot: c.String("data-root"),
				Split: c.String("split"), Checkpoint: c.String("checkpoint"), Out: c.String("out")})
			if err != nil {
				return err
			}
			fmt.Printf("wrote the %s embeddings of %d images to %s\n", c.String("split"), n, c.String("out"))
			return nil
		},
	}
}

func evalCommand() *cli.Command {
	return &cli.Command{
		Name: "eval",
		Usage: "evaluate a run: coarse and fine (transfer) linear probes and kNN, subgroup discovery, group DRO " +
			"where groups exist, spread diagnostics; writes RUNDIR/metrics.json, report.md and embeddings_test.png",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "run folder", Required: true},
			checkpointFlag(), dataRootFlag(),
			&cli.IntFlag{Name: "knn-k", Value: 200, Usage: "neighbours of the kNN classifier"},
			&cli.Float64Flag{Name: "knn-temperature", Value: 0.1, Usage: "temperature of the kNN votes"},
			&cli.BoolFlag{Name: "skip-dro", Usage: "skip the group DRO probes"},
			&cli.IntFlag{Name: "probe-epochs", Value: 0, Usage: "also train the reference protocol's fine-label probe on augmented images through the frozen encoder for this many epochs (the reference uses 100; 0: off)"},
			&cli.IntFlag{Name: "george-full-epochs", Value: 0, Usage: "also run GEORGE's full-network variant for this many epochs where the data has groups and a validation split: encoder and head trained with group DRO over the found groups, the epoch chosen on validation (0: off)"},
			&cli.Float64Flag{Name: "george-full-lr", Value: 1e-4, Usage: "the full-network variant's AdamW learning rate"},
			&cli.Float64Flag{Name: "george-full-eta", Value: 0.01, Usage: "the full-network variant's group-weight step size"},
			&cli.Float64Flag{Name: "george-full-adjustment", Value: 0, Usage: "the full-network variant's group adjustment C (loss_g + C/sqrt(n_g))"},
			&cli.StringFlag{Name: "on", Value: "test", Usage: "score on the test split (metrics.json, report.md) or on the validation split (metrics_val.json: for choosing hyper-parameters without touching test)"},
		},
		Action: func(c *cli.Context) error {
			cfg := eval.Config{KNN: eval.KNNConfig{K: c.Int("knn-k"), Temperature: c.Float64("knn-temperature")}, SkipDRO: c.Bool("skip-dro")}
			if cfg.KNN.K < 1 || !(cfg.KNN.Temperature > 0) || c.Int("probe-epochs") < 0 {
				return badInput("--knn-k must be >= 1, --knn-temperature positive and --probe-epochs >= 0")
			}
			gf := train.GeorgeFullConfig{Epochs: c.Int("george-full-epochs"), LR: c.Float64("george-full-lr"),
				Eta: c.Float64("george-full-eta"), Adjustment: c.Float64("george-full-adjustment")}
			if gf.Epochs < 0 || !(gf.LR > 0) || !(gf.Eta > 0) || !(gf.Adjustment >= 0) {
				return badInput("--george-full-epochs must be >= 0, --george-full-lr and --george-full-eta positive, --george-full-adjustment >= 0")
			}
			on := c.String("on")
			if on != "test" && on != "val" {
				return badInput("--on %q: want test or val", on)
			}
			r, err := train.EvaluateRun(train.EvalOptions{RunDir: c.String("run"), DataRoot: c.String("data-root"),
				Checkpoint: c.String("checkpoint"), Eval: cfg, ProbeEpochs: c.Int("probe-epochs"), On: on,
				GeorgeFull: gf})
			if err != nil {
				return err
			}
			fmt.Println(r.Markdown())
			fmt.Printf("wrote %s\n", filepath.Join(c.String("run"), train.MetricsFile(on)))
			return nil
		},
	}
}

// summary is the comparison row of one evaluated run.
type summary struct {
	run, method string
	alpha       float64
	report      *eval.Report
}

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "print a table comparing evaluated runs (their metrics.json)",
		ArgsUsage: "RUNDIR...",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return badInput("compare: name at least one run folder")
			}
			var rows []summary
			for _, dir := range c.Args().Slice() {
				r, err := eval.ReadReport(filepath.Join(dir, "metrics.json"))
				if errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("%s: %w (run `spreadtrain eval --run %s` first)", dir, err, dir)
				} else if err != nil {
					return err
				}
				cfg, err := train.RunConfigOf(dir)
				if err != nil {
					return err
				}
				rows = append(rows, summary{run: dir, method: cfg.Method.Name, alpha: cfg.Method.Alpha, report: r})
			}
			fmt.Print(compareTable(rows))
			return nil
		},
	}
}

// compareTable is a Markdown table of eval.Headlines, one row per run; accuracies in percent.
func compareTable(rows []summary) string {
	var b strings.Builder
	b.WriteString("| run | method | alpha |")
	for _, h := range eval.Headlines {
		b.WriteString(" " + h.Name + " |")
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(eval.Headlines)) + "\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %g |", r.run, r.method, r.alpha)
		for _, h := range eval.Headlines {
			switch v := h.Of(r.report); {
			case v == nil:
				b.WriteString(" - |")
			case h.Percent:
				fmt.Fprintf(&b, " %.2f |", 100**v)
			default:
				fmt.Fprintf(&b, " %.3f |", *v)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
