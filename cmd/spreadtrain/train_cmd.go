package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/dist"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
	"github.com/spreadtrain/spreadtrain/pkg/train"
)

// override is a flag that, when given, replaces one field of the configuration.
type override struct {
	flag  cli.Flag
	apply func(c *cli.Context, cfg *train.Config)
}

func trainOverrides() []override {
	d := train.Default()
	str := func(name, usage, def string, set func(*train.Config, string)) override {
		return override{&cli.StringFlag{Name: name, Usage: usage, Value: def},
			func(c *cli.Context, cfg *train.Config) { set(cfg, c.String(name)) }}
	}
	num := func(name, usage string, def float64, set func(*train.Config, float64)) override {
		return override{&cli.Float64Flag{Name: name, Usage: usage, Value: def},
			func(c *cli.Context, cfg *train.Config) { set(cfg, c.Float64(name)) }}
	}
	integer := func(name, usage string, def int, set func(*train.Config, int)) override {
		return override{&cli.IntFlag{Name: name, Usage: usage, Value: def},
			func(c *cli.Context, cfg *train.Config) { set(cfg, c.Int(name)) }}
	}
	return []override{
		str("data", "dataset: "+strings.Join(data.SourceNames, ", "), d.Data.Name, func(c *train.Config, v string) { c.Data.Name = v }),
		str("data-dir", "folder holding the dataset's files (default: <data root>/<dataset>)", "", func(c *train.Config, v string) { c.Data.Dir = v }),
		str("label-map", "fine-to-coarse label map file, or \"none\" to train on fine labels (default: the dataset's built-in hierarchy)", "", func(c *train.Config, v string) { c.Data.LabelMap = v }),
		integer("per-class-limit", "keep this many training images per class (0: all)", 0, func(c *train.Config, v int) { c.Data.PerClassLimit = v }),
		integer("test-per-class-limit", "keep this many test images per class (0: all)", 0, func(c *train.Config, v int) { c.Data.TestPerClassLimit = v }),
		str("method", "objective: "+strings.Join(train.Methods, ", "), d.Method.Name, func(c *train.Config, v string) { c.Method.Name = v }),
		num("alpha", "L_spread = alpha*SupCon + (1-alpha)*cNCE", d.Method.Alpha, func(c *train.Config, v float64) { c.Method.Alpha = v }),
		num("beta", "autoencoder weight (thanos: 1 when not given; add it to supcon, spread or simclr for their '+ autoencoder' variants)", d.Method.Beta, func(c *train.Config, v float64) { c.Method.Beta = v }),
		num("gamma", "cross-entropy weight on the coarse labels", d.Method.Gamma, func(c *train.Config, v float64) { c.Method.Gamma = v }),
		num("temperature", "contrastive temperature tau", d.Method.Temperature, func(c *train.Config, v float64) { c.Method.Temperature = v }),
		str("denominator", "SupCon denominator: all or negatives", d.Method.Denominator, func(c *train.Config, v string) { c.Method.Denominator = v }),
		integer("views", "augmented views per image", d.Method.Views, func(c *train.Config, v int) { c.Method.Views = v }),
		override{&cli.BoolFlag{Name: "compat", Usage: "the reference code's loss variant (docs/losses.md)"},
			func(c *cli.Context, cfg *train.Config) { cfg.Method.Compat = c.Bool("compat") }},
		str("arch", "encoder: "+strings.Join(nn.Archs(), ", "), d.Model.Arch, func(c *train.Config, v string) { c.Model.Arch = v }),
		str("stem", "encoder stem: cifar (3x3, no max-pool) or imagenet (7x7/2 + max-pool)", d.Model.Stem, func(c *train.Config, v string) { c.Model.Stem = v }),
		num("width", "encoder width multiplier (1 = torchvision's 64 base channels)", d.Model.Width, func(c *train.Config, v float64) { c.Model.Width = v }),
		num("decoder-width", "decoder width multiplier", d.Decoder.Width, func(c *train.Config, v float64) { c.Decoder.Width = v }),
		str("head", "projection head: none or mlp", d.Model.Head, func(c *train.Config, v string) { c.Model.Head = v }),
		integer("epochs", "training epochs", d.Train.Epochs, func(c *train.Config, v int) { c.Train.Epochs = v }),
		integer("batch-size", "images per step", d.Train.BatchSize, func(c *train.Config, v int) { c.Train.BatchSize = v }),
		str("optimizer", "adamw or sgd", d.Optim.Name, func(c *train.Config, v string) { c.Optim.Name = v }),
		num("lr", "base learning rate", d.Optim.LR, func(c *train.Config, v float64) { c.Optim.LR = v }),
		num("weight-decay", "weight decay", d.Optim.WeightDecay, func(c *train.Config, v float64) { c.Optim.WeightDecay = v }),
		str("device", "auto, cpu, cuda or cuda:N", d.Train.Device, func(c *train.Config, v string) { c.Train.Device = v }),
		override{&cli.Uint64Flag{Name: "seed", Usage: "random seed: weights, batches and augmentation (train.seed), and the data draw (data.seed) unless --data-seed is given", Value: d.Train.Seed},
			func(c *cli.Context, cfg *train.Config) {
				cfg.Train.Seed = c.Uint64("seed")
				if !c.IsSet("data-seed") {
					cfg.Data.Seed = c.Uint64("seed") // a seed sweep varies the data subset and the validation split too
				}
			}},
		override{&cli.Uint64Flag{Name: "data-seed", Usage: "seed of the data draw (data.seed): the per-class subset, the validation split, the synthetic sets' attributes", Value: d.Data.Seed},
			func(c *cli.Context, cfg *train.Config) { cfg.Data.Seed = c.Uint64("data-seed") }},
		str("amp", "bf16 autocast of the forward passes: auto (on CUDA), on or off", d.Speed.AMP, func(c *train.Config, v string) { c.Speed.AMP = v }),
		str("channels-last", "channels-last weights and images: auto (on), on or off", d.Speed.ChannelsLast, func(c *train.Config, v string) { c.Speed.ChannelsLast = v }),
		str("cudnn-benchmark", "cuDNN's convolution autotuner: auto (on CUDA), on or off", d.Speed.CuDNNBenchmark, func(c *train.Config, v string) { c.Speed.CuDNNBenchmark = v }),
		str("foreach", "one multi-tensor AdamW update for all parameters: auto (on), on or off", d.Speed.Foreach, func(c *train.Config, v string) { c.Speed.Foreach = v }),
		integer("checkpoint-every", "steps between checkpoints (also written at every epoch end)", d.Train.CheckpointEvery, func(c *train.Config, v int) { c.Train.CheckpointEvery = v }),
		integer("log-every", "steps between metric records", d.Train.LogEvery, func(c *train.Config, v int) { c.Train.LogEvery = v }),
	}
}

func trainCommand() *cli.Command {
	ovs := trainOverrides()
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "YAML run configuration, or a built-in one: " + strings.Join(train.BuiltinConfigs(), ", ") + " (flags override it)"},
		&cli.StringFlag{Name: "out", Usage: "run folder: config, metrics, checkpoints, plots", Required: true},
		&cli.BoolFlag{Name: "resume", Usage: "continue the run in --out from its last checkpoint (with its saved configuration)"},
		&cli.StringFlag{Name: "data-root", Usage: "where datasets live (default: $SPREADTRAIN_DATA, else ./data)"},
		&cli.IntFlag{Name: "nproc-per-node", Value: 1, Usage: "data-parallel processes to launch on this machine (one per GPU; Gloo on CPU). " +
			"Under torchrun, Slurm or Kubernetes, set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT instead"},
		&cli.DurationFlag{Name: "dist-timeout", Value: dist.DefaultTimeout, Usage: "how long a data-parallel process waits for its peers before failing"},
	}
	for _, o := range ovs {
		flags = append(flags, o.flag)
	}
	return &cli.Command{
		Name:  "train",
		Usage: "train an encoder on a dataset's coarse labels",
		Flags: flags,
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			cfg, err := train.LoadConfig(c.String("config"))
			if err != nil {
				return usageError{err}
			}
			changed := false
			for _, o := range ovs {
				if c.IsSet(o.flag.Names()[0]) {
					o.apply(c, &cfg)
					changed = true
				}
			}
			resume := c.Bool("resume")
			restarted, err := elasticResume(c.String("out"))
			if err != nil {
				return err
			}
			if resume && !restarted && (changed || c.IsSet("config")) {
				return badInput("--resume continues a run with its saved configuration; drop the other flags (or start a new run with another --out)")
			}
			if restarted {
				log.Infof("restarted by torchrun (TORCHELASTIC_RESTART_COUNT=%s): resuming from the run's last checkpoint", os.Getenv("TORCHELASTIC_RESTART_COUNT"))
			}
			resume = resume || restarted // torchrun repeats the command line; the saved configuration wins
			if err := cfg.Normalized().Validate(); err != nil && !resume {
				return usageError{err}
			}
			if n := c.Int("nproc-per-node"); n > 1 && os.Getenv("WORLD_SIZE") == "" {
				return launchWorkers(n)
			} else if n < 1 {
				return badInput("--nproc-per-node %d: must be >= 1", n)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := train.Options{Config: cfg, RunDir: c.String("out"), DataRoot: c.String("data-root"),
				Resume: resume, Log: log}
			group, err := joinGroup(cfg, opts, c.Duration("dist-timeout"))
			if err != nil {
				return err
			}
			if group != nil {
				defer group.Close()
				opts.Group = group
			}
			if isTerminal(os.Stderr) {
				opts.Progress = os.Stderr
			}
			res, err := train.Run(ctx, opts)
			if errors.Is(err, train.ErrInterrupted) {
				log.Warn(err)
				return fmt.Errorf("stopped at step %d after writing a checkpoint; continue with: spreadtrain train --out %s --resume", res.Steps, opts.RunDir)
			}
			if err != nil {
				return err
			}
			log.WithField("best_val_coarse_knn_acc", res.BestScore).WithField("best_epoch", res.BestEpoch).
				Infof("training done: %d epochs, %d steps; run folder %s", res.Epochs, res.Steps, opts.RunDir)
			return nil
		},
	}
}

// launchWorkers re-runs this command as n local data-parallel workers (torchrun's variables set).
func launchWorkers(n int) error {
	var args []string
	skip := false
	for _, a := range invocation[1:] {
		switch {
		case skip:
			skip = false
			continue
		case a == "--nproc-per-node" || a == "-nproc-per-node":
			skip = true
			continue
		case strings.HasPrefix(a, "--nproc-per-node=") || strings.HasPrefix(a, "-nproc-per-node="):
			continue
		}
		args = append(args, a)
	}
	err := dist.Spawn(n, args, nil)
	var se *dist.SignalError
	if errors.As(err, &se) {
		return fmt.Errorf("stopped by %v: the workers wrote a checkpoint; continue with: spreadtrain train --out <run folder> --resume", se.Signal)
	}
	return err
}

// joinGroup joins the data-parallel job the environment describes (nil for a single process).
func joinGroup(cfg train.Config, opts train.Options, timeout time.Duration) (*dist.Group, error) {
	env, err := dist.ReadEnv()
	if err != nil {
		return nil, usageError{err}
	}
	if !env.Distributed() {
		return nil, nil
	}
	device := cfg.Train.Device
	if opts.Resume {
		if saved, err := train.RunConfigOf(opts.RunDir); err == nil {
			device = saved.Train.Device
		}
	}
	dev := torch.CPU
	if d, err := torch.ParseDevice(device); err == nil && d.Type == torch.CUDADevice {
		dev = torch.CUDA(env.LocalRank)
	}
	return dist.Init(env, dist.WithDevice(dev), dist.WithTimeout(timeout))
}
