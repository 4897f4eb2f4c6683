package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sirupsen/logrus"
	"go.yaml.in/yaml/v3"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/dist"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Options are what a run needs besides its configuration.
type Options struct {
	Config   Config
	RunDir   string
	DataRoot string
	Resume   bool
	Log      *logrus.Logger
	// Progress receives a redrawn progress bar when non-nil (stderr on a terminal); otherwise the
	// loop logs a plain line every log interval.
	Progress io.Writer
	// MaxSteps stops the run after this many optimizer steps in this invocation (0: no limit); tests
	// use it to simulate an interruption.
	MaxSteps int
	// Group makes the run one process of a data-parallel job (nil: a single process). Every rank
	// trains on its shard; only rank 0 writes to the run folder.
	Group *dist.Group
}

// ErrInterrupted reports a run stopped by its context (Ctrl-C) after writing a checkpoint.
var ErrInterrupted = errors.New("interrupted")

// Result summarises a finished (or interrupted) run.
type Result struct {
	Steps     int
	Epochs    int
	BestScore float64
	BestEpoch int
}

// Run trains a model as configured, writing everything to opts.RunDir. It returns ErrInterrupted
// (wrapped) when ctx is cancelled, after checkpointing.
func Run(ctx context.Context, opts Options) (res Result, err error) {
	runtime.LockOSThread() // libtorch keeps grad mode per thread
	defer runtime.UnlockOSThread()
	log := opts.Log
	if log == nil {
		log = logrus.New()
		log.SetOutput(io.Discard)
	}
	rank, world := 0, 1
	if opts.Group != nil {
		rank, world = opts.Group.Rank(), opts.Group.WorldSize()
	}
	if rank == 0 {
		if err := prepareRunDir(opts.RunDir, opts.Resume); err != nil {
			return res, err
		}
	}
	if err := barrier(opts.Group); err != nil {
		return res, err
	}
	cfg := opts.Config.Normalized()
	var ck *Checkpoint
	if opts.Resume {
		if ck, err = ReadCheckpoint(CheckpointPath(opts.RunDir, false)); err != nil {
			return res, fmt.Errorf("resume: %w", err)
		}
		defer ck.Free()
		// the run continues with the configuration it started with
		cfg = ck.Config.Normalized()
	}
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	if cfg.Train.Threads > 0 {
		torch.SetNumThreads(cfg.Train.Threads)
	}
	dev, err := torch.ParseDevice(cfg.Train.Device)
	if err != nil {
		return res, fmt.Errorf("train.device: %w", err)
	}
	if dev.Type == torch.CUDADevice && opts.Group != nil {
		dev = torch.CUDA(opts.Group.LocalRank()) // one GPU per process
	}
	// every rank draws its own augmentations; the weights come from rank 0 (broadcast below)
	torch.ManualSeed(cfg.Train.Seed + uint64(rank)*1_000_003)

	trainSet, valSet, err := loadTrainVal(cfg, opts.DataRoot)
	if err != nil {
		return res, err
	}
	cfg.Augment = resolveAugment(cfg, trainSet)
	cfgYAML, err := yaml.Marshal(cfg)
	if err != nil {
		return res, err
	}
	if !opts.Resume && rank == 0 {
		if err := writeAtomic(filepath.Join(opts.RunDir, "config.yaml"), cfgYAML); err != nil {
			return res, err
		}
	}
	log.WithFields(logrus.Fields{"train": trainSet.N, "val": valSet.N, "coarse": trainSet.CoarseNames,
		"device": dev, "libtorch": torch.Version()}).Info("data loaded")

	model, err := NewModel(cfg, ShapeOf(cfg, trainSet))
	if err != nil {
		return res, err
	}
	defer model.Free()
	if err := torch.Catch(func() { model.ToDevice(dev) }); err != nil {
		return res, err
	}
	fast, err := cfg.Speed.Resolve(dev)
	if err != nil {
		return res, err
	}
	if err := torch.Catch(func() { fast.Apply(model) }); err != nil {
		return res, err
	}
	params := model.Parameters()
	log.WithFields(logrus.Fields{"parameters": nn.CountParams(params), "encoder_dim": model.Encoder.OutDim,
		"method": cfg.Method.Name, "amp_bf16": fast.AMP, "channels_last": fast.ChannelsLast,
		"cudnn_benchmark": fast.CuDNNBenchmark, "foreach": fast.Foreach}).Info("model built")
	opt, err := nn.NewOptimizer(fast.Optim(cfg.Optim), params)
	if err != nil {
		return res, err
	}

	pipe, err := newPipeline(cfg, trainSet, dev, rank, world)
	if err != nil {
		return res, err
	}
	defer pipe.free()
	stepsPerEpoch := pipe.stepsPerEpoch()
	totalSteps := stepsPerEpoch * cfg.Train.Epochs
	if err := cfg.Schedule.Validate(totalSteps); err != nil {
		return res, err
	}

	pos := Position{BestScore: -1}
	if ck != nil {
		if err := ck.restore(model, opt, dev); err != nil {
			return res, err
		}
		pos = ck.Pos
		if err := pipe.setState(pos.Loader); err != nil {
			return res, fmt.Errorf("resume: %w", err)
		}
		if rank > 0 { // the checkpoint holds rank 0's generator; the others continue on their own stream
			torch.ManualSeed(cfg.Train.Seed + uint64(rank)*1_000_003 + uint64(pos.Step))
		}
		log.WithFields(logrus.Fields{"epoch": pos.Epoch, "step": pos.Step}).Info("resumed from the last checkpoint")
	}
	if opts.Group != nil {
		if err := opts.Group.BroadcastParameters(model.State(), 0); err != nil {
			return res, err
		}
	}
	var metrics *metricsLog
	if rank == 0 {
		if metrics, err = openMetrics(opts.RunDir, pos.Step, opts.Resume); err != nil {
			return res, err
		}
		defer metrics.close()
	} else {
		log.SetOutput(io.Discard) // rank 0 speaks for the job
		opts.Progress = nil
	}

	lp := &loop{cfg: cfg, fast: fast, opts: opts, group: opts.Group, rank: rank, log: log, model: model, opt: opt, params: params, pipe: pipe, dev: dev,
		metrics: metrics, cfgYAML: cfgYAML, pos: pos, stepsPerEpoch: stepsPerEpoch, totalSteps: totalSteps,
		val: valSet, train: trainSet}
	if cerr := torch.Catch(func() { err = lp.run(ctx) }); cerr != nil {
		err = cerr
	}
	res = Result{Steps: lp.pos.Step, Epochs: lp.pos.Epoch, BestScore: lp.pos.BestScore, BestEpoch: lp.pos.BestEpoch}
	if err == nil && lp.pos.Epoch == cfg.Train.Epochs && rank == 0 {
		err = lp.finalPlots()
	}
	return res, err
}

// finalPlots draws the training curves and the test embeddings' 2-D projection into the run folder.
func (l *loop) finalPlots() error {
	if err := PlotCurves(l.opts.RunDir); err != nil {
		return fmt.Errorf("training curves: %w", err)
	}
	test, err := loadSplit(l.cfg, l.opts.DataRoot, "test")
	if err != nil {
		return err
	}
	feats, err := Features(l.model, l.pipe.aug, test, l.dev, max(l.cfg.Train.BatchSize, 256))
	if err != nil {
		return err
	}
	defer feats.Free()
	return embeddingPlot(l.opts.RunDir, l.cfg, feats, test)
}

// prepareRunDir refuses to overwrite a run by accident, and to resume one that does not exist.
func prepareRunDir(dir string, resume bool) error {
	if dir == "" {
		return fmt.Errorf("--out: a run folder is required")
	}
	last := CheckpointPath(dir, false)
	_, statErr := os.Stat(last)
	switch {
	case resume && statErr != nil:
		return fmt.Errorf("--resume: %s has no checkpoint (%s); start the run without --resume", dir, last)
	case !resume && statErr == nil:
		return fmt.Errorf("%s already holds a run; pass --resume to continue it, or choose another --out", dir)
	}
	// a crash during a checkpoint write leaves its temporary file behind: the rename never happened
	stale, _ := filepath.Glob(filepath.Join(checkpointDir(dir), ".*.tmp-*"))
	for _, f := range stale {
		os.Remove(f)
	}
	return os.MkdirAll(checkpointDir(dir), 0o755)
}

// loadTrainVal reads the training split and holds out the validation share (seeded, stratified).
func loadTrainVal(cfg Config, root string) (train, val *data.Dataset, err error) {
	if root == "" {
		root = data.DataRoot()
	}
	all, err := cfg.Data.Load(root, "train")
	if err != nil {
		return nil, nil, err
	}
	if cfg.Train.ValFraction == 0 {
		return all, all.Subset(nil), nil
	}
	return data.SplitTrainVal(all, cfg.Train.ValFraction, data.DefaultSplitSeed)
}

// loop is one run's mutable state.
type loop struct {
	group         *dist.Group
	rank          int
	cfg           Config
	fast          FastPath
	opts          Options
	log           *logrus.Logger
	model         *Model
	opt           nn.Optimizer
	params        []torch.Named
	pipe          *pipeline
	dev           torch.Device
	metrics       *metricsLog
	cfgYAML       []byte
	pos           Position
	stepsPerEpoch int
	totalSteps    int
	train, val    *data.Dataset
	acc           *accumulator
	intervalStart time.Time
	bar           *progress
}

func (l *loop) run(ctx context.Context) error {
	cfg := l.cfg
	stepsThisCall := 0
	for l.pos.Epoch < cfg.Train.Epochs {
		epoch := l.pos.Epoch + 1
		l.model.SetTrain(true)
		l.bar = nil
		if l.opts.Progress != nil {
			l.bar = newProgress(l.opts.Progress, epoch, cfg.Train.Epochs, l.stepsPerEpoch)
		}
		l.acc, l.intervalStart = newAccumulator(), time.Now()
		for {
			if err := ctx.Err(); err != nil {
				if cerr := l.checkpoint(); cerr != nil {
					return fmt.Errorf("%w; the checkpoint could not be written either: %v", ErrInterrupted, cerr)
				}
				return fmt.Errorf("%w at step %d; resume with --resume", ErrInterrupted, l.pos.Step)
			}
			if l.opts.MaxSteps > 0 && stepsThisCall >= l.opts.MaxSteps {
				return l.checkpoint()
			}
			var ok bool
			torch.WithScope(func() {
				var in stepInput
				in, ok = l.pipe.next()
				if !ok {
					return
				}
				lr := cfg.Schedule.LR(cfg.Optim.LR, l.pos.Step, l.totalSteps)
				if l.group != nil {
					in.gather = l.gather
				}
				terms := objective(l.model, cfg.Method, l.fast, in)
				terms.Total.Backward()
				if l.group != nil {
					if _, err := l.group.AllReduceGradients(l.params); err != nil {
						panic(&torch.Error{Op: "all-reduce", Msg: err.Error()})
					}
				}
				if cfg.Optim.ClipNorm > 0 {
					nn.ClipGradNorm(l.params, cfg.Optim.ClipNorm)
				}
				l.opt.Step(lr)
				l.opt.ZeroGrad()
				l.acc.add(terms, lr)
			})
			if !ok {
				break
			}
			l.pos.Step++
			stepsThisCall++
			if l.pos.Step%cfg.Train.LogEvery == 0 || l.pipe.position() == l.stepsPerEpoch {
				if err := l.logInterval(epoch); err != nil {
					return err
				}
			}
			if l.pos.Step%cfg.Train.CheckpointEvery == 0 {
				if err := l.checkpoint(); err != nil {
					return err
				}
			}
		}
		l.pos.Epoch = epoch
		if err := l.endEpoch(epoch); err != nil {
			return err
		}
	}
	return nil
}

// endEpoch validates, keeps the best checkpoint, and checkpoints.
func (l *loop) endEpoch(epoch int) error {
	vals := map[string]float64{}
	if l.cfg.Train.EvalEvery > 0 && epoch%l.cfg.Train.EvalEvery == 0 && l.val.N > 0 {
		score, err := l.validate()
		if err != nil {
			return err
		}
		vals["val_coarse_knn_acc"] = score
		if score > l.pos.BestScore {
			l.pos.BestScore, l.pos.BestEpoch = score, epoch
			vals["best"] = 1
		}
	}
	if l.metrics == nil { // ranks > 0 validate too (same time per epoch), but only rank 0 writes
		return nil
	}
	if err := l.metrics.add(Record{Kind: "epoch", Step: l.pos.Step, Epoch: epoch, Values: vals}); err != nil {
		return err
	}
	l.log.WithFields(logrus.Fields{"epoch": epoch, "val_coarse_knn_acc": vals["val_coarse_knn_acc"]}).Info("epoch done")
	if err := l.checkpoint(); err != nil {
		return err
	}
	if vals["best"] == 1 {
		return copyFile(CheckpointPath(l.opts.RunDir, false), CheckpointPath(l.opts.RunDir, true))
	}
	return nil
}

// logInterval writes the averages of the steps since the last record (after checking that they are
// finite) and updates the progress display.
func (l *loop) logInterval(epoch int) error {
	if l.acc.steps == 0 {
		return nil
	}
	steps := l.acc.steps
	vals, err := l.acc.flush()
	if err != nil {
		return err
	}
	vals["images_per_s"] = float64(steps*l.cfg.Train.BatchSize) / math.Max(time.Since(l.intervalStart).Seconds(), 1e-9)
	l.intervalStart = time.Now()
	if err := l.checkFinite(vals); err != nil {
		return err
	}
	if l.metrics == nil {
		return nil
	}
	if err := l.metrics.add(Record{Kind: "step", Step: l.pos.Step, Epoch: epoch, Values: vals}); err != nil {
		return err
	}
	if l.bar != nil {
		l.bar.update(l.pipe.position(), vals["images_per_s"], formatTerms(vals))
	} else {
		l.log.WithFields(logrus.Fields{"epoch": epoch, "step": l.pos.Step, "loss": vals["loss"],
			"lr": vals["lr"], "img_per_s": math.Round(vals["images_per_s"])}).Info("train")
	}
	return nil
}

// checkpoint logs (and so checks) the steps not yet logged, makes the metrics durable, then writes
// the last checkpoint atomically: a checkpoint never holds weights from after a non-finite loss.
func (l *loop) checkpoint() error {
	if l.acc != nil {
		if err := l.logInterval(l.pos.Epoch + 1); err != nil {
			return err
		}
	}
	if l.metrics == nil {
		return nil
	}
	if err := l.metrics.sync(); err != nil {
		return err
	}
	l.pos.Loader = l.pipe.state()
	return saveCheckpoint(CheckpointPath(l.opts.RunDir, false), l.cfgYAML, l.model, l.opt, l.pos, l.dev)
}

func (l *loop) checkFinite(vals map[string]float64) error {
	for k, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("the %s loss became %v before step %d (epoch %d); the run stopped and the last good checkpoint "+
				"(%s) was kept. Lower optimizer.lr, raise method.temperature or set optimizer.clip_norm, then --resume",
				k, v, l.pos.Step, l.pos.Epoch+1, CheckpointPath(l.opts.RunDir, false))
		}
	}
	return nil
}

func formatTerms(vals map[string]float64) string {
	s := ""
	for _, k := range lossTerms {
		if v, ok := vals[k]; ok {
			s += fmt.Sprintf("%s %.4f ", k, v)
		}
	}
	return s
}

// accumulator sums loss terms on the device between log points, so that a step never waits for the
// device to read a value back.
type accumulator struct {
	sums  map[string]*torch.Tensor
	lrSum float64
	steps int
}

func newAccumulator() *accumulator { return &accumulator{sums: map[string]*torch.Tensor{}} }

func (a *accumulator) add(t Terms, lr float64) {
	for _, n := range t.Named() {
		v := n.Tensor.Detach()
		if s, ok := a.sums[n.Name]; ok {
			s.AddInPlace(v)
		} else {
			c := v.Clone()
			torch.Persist(c)
			a.sums[n.Name] = c
		}
	}
	a.lrSum += lr
	a.steps++
}

// flush returns the interval's averages and starts a new interval.
func (a *accumulator) flush() (map[string]float64, error) {
	vals := map[string]float64{}
	err := torch.Catch(func() {
		for k, s := range a.sums {
			vals[k] = s.Item() / float64(a.steps)
			s.Free()
		}
	})
	vals["lr"] = a.lrSum / float64(max(1, a.steps))
	a.sums, a.lrSum, a.steps = map[string]*torch.Tensor{}, 0, 0
	return vals, err
}

func copyFile(src, dst string) error {
	raw, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeAtomic(dst, raw)
}

// gather all-gathers the local embeddings (with gradient) and labels into the global batch, so that
// the contrastive losses contrast this rank's anchors against every rank's samples.
func (l *loop) gather(z, labels *torch.Tensor) (*torch.Tensor, *torch.Tensor, int64) {
	gz, err := l.group.AllGatherWithGrad(z)
	if err != nil {
		panic(&torch.Error{Op: "all-gather", Msg: err.Error()})
	}
	gy, err := l.group.AllGather(labels)
	if err != nil {
		panic(&torch.Error{Op: "all-gather", Msg: err.Error()})
	}
	return gz, gy, int64(l.rank) * z.Size(0)
}

func barrier(g *dist.Group) error {
	if g == nil {
		return nil
	}
	return g.Barrier()
}
