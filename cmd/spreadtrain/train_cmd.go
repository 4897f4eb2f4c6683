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

// Help categories of the train command's flags.
const (
	catRun    = "Run"
	catData   = "Data"
	catModel  = "Model"
	catMethod = "Method"
	catOptim  = "Optimizer and schedule"
	catLoop   = "Training loop"
	catSpeed  = "Speed"
	catDist   = "Data parallelism"
)

// keyFlag is a flag that sets one configuration key (section.key in the YAML file).
type keyFlag struct {
	flag cli.Flag
	key  string
}

// configFlags are the train command's flags that set configuration keys; each is applied through the
// same strict YAML decoding as a file or --set. Usage strings name the key.
func configFlags() []keyFlag {
	d := train.Default()
	usage := func(u, key string) string { return u + " [" + key + "]" }
	str := func(cat, name, key, u, def string) keyFlag {
		return keyFlag{&cli.StringFlag{Name: name, Category: cat, Usage: usage(u, key), Value: def}, key}
	}
	num := func(cat, name, key, u string, def float64) keyFlag {
		return keyFlag{&cli.Float64Flag{Name: name, Category: cat, Usage: usage(u, key), Value: def}, key}
	}
	integer := func(cat, name, key, u string, def int) keyFlag {
		return keyFlag{&cli.IntFlag{Name: name, Category: cat, Usage: usage(u, key), Value: def}, key}
	}
	boolean := func(cat, name, key, u string) keyFlag {
		return keyFlag{&cli.BoolFlag{Name: name, Category: cat, Usage: usage(u, key)}, key}
	}
	return []keyFlag{
		str(catData, "data", "data.name", "dataset: "+strings.Join(data.SourceNames, ", "), d.Data.Name),
		str(catData, "data-dir", "data.dir", "folder holding the dataset's files (default: <data root>/<dataset>)", ""),
		str(catData, "label-map", "data.label_map", "fine-to-coarse label map file, or \"none\" to train on fine labels (default: the dataset's built-in hierarchy)", ""),
		integer(catData, "per-class-limit", "data.per_class_limit", "keep this many training images per class (0: all)", 0),
		integer(catData, "test-per-class-limit", "data.test_per_class_limit", "keep this many test images per class (0: all)", 0),
		num(catData, "val-fraction", "train.val_fraction", "share of the training split held out for validation", d.Train.ValFraction),

		str(catMethod, "method", "method.name", "objective: "+strings.Join(train.Methods, ", "), d.Method.Name),
		num(catMethod, "alpha", "method.alpha", "L_spread = alpha*SupCon + (1-alpha)*cNCE", d.Method.Alpha),
		num(catMethod, "beta", "method.beta", "autoencoder weight (thanos, thanos-2b: 0.3 when not given; add it to supcon, spread or simclr for their '+ autoencoder' variants)", d.Method.Beta),
		num(catMethod, "gamma", "method.gamma", "cross-entropy weight on the coarse labels", d.Method.Gamma),
		num(catMethod, "temperature", "method.temperature", "contrastive temperature tau", d.Method.Temperature),
		str(catMethod, "denominator", "method.denominator", "SupCon denominator: all or negatives", d.Method.Denominator),
		integer(catMethod, "views", "method.views", "augmented views per image", d.Method.Views),
		boolean(catMethod, "compat", "method.compat", "the reference code's loss variant (docs/losses.md)"),

		str(catModel, "arch", "model.arch", "encoder: "+strings.Join(nn.Archs(), ", "), d.Model.Arch),
		str(catModel, "stem", "model.stem", "encoder stem: cifar (3x3, no max-pool) or imagenet (7x7/2 + max-pool)", d.Model.Stem),
		num(catModel, "width", "model.width", "encoder width multiplier (1 = torchvision's 64 base channels)", d.Model.Width),
		num(catModel, "decoder-width", "decoder.width", "decoder width multiplier", d.Decoder.Width),
		str(catModel, "head", "model.head", "projection head: none or mlp", d.Model.Head),

		str(catOptim, "optimizer", "optimizer.name", "adamw or sgd", d.Optim.Name),
		num(catOptim, "lr", "optimizer.lr", "base learning rate", d.Optim.LR),
		num(catOptim, "weight-decay", "optimizer.weight_decay", "weight decay", d.Optim.WeightDecay),
		num(catOptim, "momentum", "optimizer.momentum", "SGD momentum", d.Optim.Momentum),
		num(catOptim, "clip-norm", "optimizer.clip_norm", "clip the gradients' global norm to this (0: no clipping)", d.Optim.ClipNorm),
		str(catOptim, "schedule", "schedule.kind", "learning-rate schedule: cosine, step or constant", d.Schedule.Kind),
		integer(catOptim, "warmup", "schedule.warmup_steps", "linear warm-up steps (on --resume: a new warm-up from the current step)", d.Schedule.WarmupSteps),
		num(catOptim, "min-lr", "schedule.min_lr", "cosine schedule's floor", d.Schedule.MinLR),

		integer(catLoop, "epochs", "train.epochs", "training epochs (on --resume: the new total; the schedule is re-planned from the current step)", d.Train.Epochs),
		integer(catLoop, "batch-size", "train.batch_size", "images per step, over all processes (on --resume: the epoch in progress continues at its first unseen image)", d.Train.BatchSize),
		keyFlag{&cli.Uint64Flag{Name: "seed", Category: catLoop, Usage: usage("random seed: weights, batches and augmentation, and the data draw (data.seed) unless --data-seed is given", "train.seed"), Value: d.Train.Seed}, "train.seed"},
		keyFlag{&cli.Uint64Flag{Name: "data-seed", Category: catData, Usage: usage("seed of the data draw: the per-class subset, the validation split, the synthetic sets' attributes", "data.seed"), Value: d.Data.Seed}, "data.seed"},
		str(catLoop, "device", "train.device", "auto, cpu, cuda or cuda:N", d.Train.Device),
		integer(catLoop, "checkpoint-every", "train.checkpoint_every", "steps between checkpoints (also written at every epoch end)", d.Train.CheckpointEvery),
		integer(catLoop, "log-every", "train.log_every", "steps between metric records", d.Train.LogEvery),
		integer(catLoop, "eval-every", "train.eval_every", "epochs between validation passes (0: none; the best checkpoint needs them)", d.Train.EvalEvery),
		boolean(catLoop, "stream-data", "train.stream_data", "keep the training images in host memory and stream each batch (datasets too big for the device)"),

		str(catSpeed, "amp", "speed.amp", "bf16 autocast of the forward passes: auto (on CUDA), on or off", d.Speed.AMP),
		str(catSpeed, "channels-last", "speed.channels_last", "channels-last weights and images: auto (on), on or off", d.Speed.ChannelsLast),
		str(catSpeed, "cudnn-benchmark", "speed.cudnn_benchmark", "cuDNN's convolution autotuner: auto (on CUDA), on or off", d.Speed.CuDNNBenchmark),
		str(catSpeed, "foreach", "speed.foreach", "one multi-tensor AdamW update for all parameters: auto (on), on or off", d.Speed.Foreach),
		str(catSpeed, "supcon-path", "speed.supcon_path", "contrastive losses: auto (blockwise above 4,096 x 4,096 rows), dense or blockwise", d.Speed.SupConPath),
	}
}

func trainCommand() *cli.Command {
	keyed := configFlags()
	flags := []cli.Flag{
		&cli.StringFlag{Name: "out", Category: catRun, Usage: "run folder: config, metrics, checkpoints, plots", Required: true},
		&cli.StringFlag{Name: "config", Category: catRun, Usage: "YAML run configuration, or a built-in one: " + strings.Join(train.BuiltinConfigs(), ", ") + " (flags override it)"},
		&cli.StringSliceFlag{Name: "set", Category: catRun, Usage: "set any configuration key, e.g. --set augment.crop.scale=[0.5,1] " +
			"(repeatable; YAML values, checked like a config file)"},
		&cli.BoolFlag{Name: "resume", Category: catRun, Usage: "continue the run in --out with its saved configuration; flags and --set may change " +
			"the optimizer, schedule, epochs, batch size, device, threads, speed and interval settings (recorded in config.yaml's history)"},
		&cli.StringFlag{Name: "from", Category: catRun, Value: "last", Usage: "checkpoint --resume starts from: last or best"},
		&cli.StringFlag{Name: "data-root", Category: catData, Usage: "where datasets live (default: $SPREADTRAIN_DATA, else ./data)"},
		&cli.IntFlag{Name: "nproc-per-node", Category: catDist, Value: 1, Usage: "data-parallel processes to launch on this machine (one per GPU; Gloo on CPU). " +
			"Under torchrun, Slurm or Kubernetes, set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT instead"},
		&cli.DurationFlag{Name: "dist-timeout", Category: catDist, Value: dist.DefaultTimeout, Usage: "how long a data-parallel process waits for its peers before failing"},
	}
	for _, k := range keyed {
		flags = append(flags, k.flag)
	}
	return &cli.Command{
		Name:  "train",
		Usage: "train an encoder on a dataset's coarse labels, or continue a run (--resume)",
		Flags: flags,
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			restarted, err := elasticResume(c.String("out"))
			if err != nil {
				return err
			}
			resume := c.Bool("resume") || restarted
			if restarted {
				// torchrun repeats the first command line; the run's saved configuration wins
				log.Infof("restarted by torchrun (TORCHELASTIC_RESTART_COUNT=%s): resuming from the run's last checkpoint", os.Getenv("TORCHELASTIC_RESTART_COUNT"))
			} else if resume && c.IsSet("config") {
				return badInput("--config starts a new run; --resume continues the saved configuration (change settings with flags or --set)")
			}
			if !resume && c.IsSet("from") {
				return badInput("--from picks the checkpoint --resume starts from; add --resume")
			}
			override, err := commandLineOverride(c, keyed)
			if err != nil {
				return err
			}
			if restarted {
				override = func(*train.Config) error { return nil }
			}
			var cfg train.Config
			if !resume {
				if cfg, err = train.LoadConfig(c.String("config")); err != nil {
					return usageError{err}
				}
				if err := override(&cfg); err != nil {
					return err
				}
				if err := cfg.Normalized().Validate(); err != nil {
					return usageError{err}
				}
			}
			if n := c.Int("nproc-per-node"); n > 1 && os.Getenv("WORLD_SIZE") == "" {
				return launchWorkers(n, c.String("out"))
			} else if n < 1 {
				return badInput("--nproc-per-node %d: must be >= 1", n)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := train.Options{Config: cfg, RunDir: c.String("out"), DataRoot: c.String("data-root"),
				Resume: resume, From: c.String("from"), Override: override, Log: log}
			group, err := joinGroup(opts, c.Duration("dist-timeout"))
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
				var refused *train.ResumeRefusal
				if errors.As(err, &refused) {
					return usageError{err}
				}
				return err
			}
			log.WithField("best_val_coarse_knn_acc", res.BestScore).WithField("best_epoch", res.BestEpoch).
				Infof("training done: %d epochs, %d steps; run folder %s", res.Epochs, res.Steps, opts.RunDir)
			return nil
		},
	}
}

// commandLineOverride collects the configuration the command line sets: the keyed flags given, the
// global --threads when given on the command line (train.threads), then each --set in order.
func commandLineOverride(c *cli.Context, keyed []keyFlag) (func(*train.Config) error, error) {
	type setting struct{ key, value, from string }
	var sets []setting
	for _, k := range keyed {
		name := k.flag.Names()[0]
		if c.IsSet(name) {
			v, err := yamlScalar(c.Value(name))
			if err != nil {
				return nil, err
			}
			sets = append(sets, setting{k.key, v, "--" + name})
		}
	}
	if c.IsSet("seed") && !c.IsSet("data-seed") {
		// a seed sweep varies the data subset and the validation split too, so its spread includes them
		sets = append(sets, setting{"data.seed", fmt.Sprint(c.Uint64("seed")), "--seed"})
	}
	if v, ok := globalValue(c, "threads"); ok {
		sets = append(sets, setting{"train.threads", fmt.Sprint(v), "--threads"})
	}
	for _, kv := range c.StringSlice("set") {
		key, value, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, badInput("--set %q: want section.key=value", kv)
		}
		sets = append(sets, setting{strings.TrimSpace(key), strings.TrimSpace(value), "--set " + key})
	}
	return func(cfg *train.Config) error {
		for _, s := range sets {
			if err := train.SetKey(cfg, s.key, s.value); err != nil {
				return usageError{fmt.Errorf("%s: %w", s.from, err)}
			}
		}
		return nil
	}, nil
}

// launchWorkers re-runs this command as n local data-parallel workers (torchrun's variables set).
func launchWorkers(n int, runDir string) error {
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
		return fmt.Errorf("stopped by %v: the workers wrote a checkpoint; continue with: spreadtrain train --out %s --resume", se.Signal, runDir)
	}
	return err
}

// joinGroup joins the data-parallel job the environment describes (nil for a single process), on the
// device the run will train on (a resumed run's saved device, unless the command line changes it).
func joinGroup(opts train.Options, timeout time.Duration) (*dist.Group, error) {
	env, err := dist.ReadEnv()
	if err != nil {
		return nil, usageError{err}
	}
	if !env.Distributed() {
		return nil, nil
	}
	cfg := opts.Config
	if opts.Resume {
		if saved, err := train.RunConfigOf(opts.RunDir); err == nil {
			cfg = saved
		}
	}
	if err := opts.Override(&cfg); err != nil {
		return nil, err
	}
	dev := torch.CPU
	if d, err := torch.ParseDevice(cfg.Train.Device); err == nil && d.Type == torch.CUDADevice {
		dev = torch.CUDA(env.LocalRank)
	}
	return dist.Init(env, dist.WithDevice(dev), dist.WithTimeout(timeout))
}
