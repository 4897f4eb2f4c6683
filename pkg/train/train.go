package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"go.yaml.in/yaml/v3"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/dist"
	"github.com/spreadtrain/spreadtrain/pkg/eval"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Options are what a run needs besides its configuration.
type Options struct {
	Config   Config
	RunDir   string
	DataRoot string
	// Resume continues the run in RunDir from a checkpoint (From: "last", the default, or "best"),
	// with the configuration saved in it; Config is then not used.
	Resume bool
	From   string
	// Override changes the configuration: Config on a new run, the saved one on resume, where only
	// the settings Resumable allows may change (each change is recorded in the run folder).
	Override func(*Config) error
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
func Run(ctx context.Context, opts Options) (Result, error) {
	runtime.LockOSThread() // libtorch keeps grad mode per thread
	defer runtime.UnlockOSThread()
	l := newLoop(opts)
	defer l.free()
	if err := l.configure(); err != nil { // run folder, the checkpoint to resume, the settings in force
		return l.result(), err
	}
	if err := l.build(); err != nil { // data, model, optimizer, batches
		return l.result(), err
	}
	if err := l.resume(); err != nil { // weights, optimizer, generators, position, schedule
		return l.result(), err
	}
	if err := l.openLogs(); err != nil { // config.yaml, metrics.jsonl, the first checkpoint
		return l.result(), err
	}
	if err := l.train(ctx); err != nil { // epochs of steps, validation, checkpoints
		return l.result(), err
	}
	return l.result(), l.finish() // curves and the test embeddings' picture
}

// loop is one run's state.
type loop struct {
	opts        Options
	log         *logrus.Logger
	group       *dist.Group
	rank, world int

	ck      *Checkpoint // the checkpoint being resumed (nil for a new run)
	changes []Change    // what the resume changed
	cfg     Config
	cfgYAML []byte
	dev     torch.Device
	fast    FastPath

	trainSet, val *data.Dataset
	model         *Model
	opt           nn.Optimizer
	params        []torch.Named
	pipe          *pipeline
	stepsPerEpoch int
	totalSteps    int
	pos           Position
	metrics       *metricsLog

	acc           *accumulator
	intervalStart time.Time
	bar           *progress
	collectiveErr error // an all-gather that failed inside the objective
	savedStep     int   // the step of the last checkpoint written
	interrupted   bool  // ctx was cancelled
}

func newLoop(opts Options) *loop {
	l := &loop{opts: opts, log: opts.Log, group: opts.Group, world: 1, pos: Position{BestScore: -1}}
	if l.log == nil {
		l.log = logrus.New()
		l.log.SetOutput(io.Discard)
	}
	if l.group != nil {
		l.rank, l.world = l.group.Rank(), l.group.WorldSize()
	}
	return l
}

func (l *loop) free() {
	if l.metrics != nil {
		l.metrics.close()
	}
	if l.pipe != nil {
		l.pipe.free()
	}
	if l.model != nil {
		l.model.Free()
	}
	if l.ck != nil {
		l.ck.Free()
	}
}

func (l *loop) result() Result {
	return Result{Steps: l.pos.Step, Epochs: l.pos.Epoch, BestScore: l.pos.BestScore, BestEpoch: l.pos.BestEpoch}
}

// seedFor is the seed of rank's generators from step on: every rank draws its own augmentations
// (the weights come from rank 0). A resumed rank continues the stream the checkpoint saved for it;
// one the checkpoint has none for (it was written by fewer processes) starts at seedFor(..., step).
func seedFor(seed uint64, rank, step int) uint64 { return seed + uint64(rank)*1_000_003 + uint64(step) }

// configure prepares the run folder, reads the checkpoint to resume, and settles the configuration
// in force (the saved one plus the overrides a resume may make), its threads and device.
func (l *loop) configure() error {
	if l.rank == 0 {
		if err := prepareRunDir(l.opts.RunDir, l.opts.Resume, l.opts.From); err != nil {
			return err
		}
	}
	if err := barrier(l.group); err != nil {
		return err
	}
	cfg := l.opts.Config
	if l.opts.Resume {
		ck, err := readResumeCheckpoint(l.opts.RunDir, l.opts.From)
		if err != nil {
			return err
		}
		l.ck, cfg = ck, ck.Config
	}
	cfg = cfg.Normalized()
	if l.opts.Override != nil {
		if err := l.opts.Override(&cfg); err != nil {
			return err
		}
		cfg = cfg.Normalized()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if l.ck != nil {
		changes, err := resumeChanges(l.ck.Config.Normalized(), cfg, l.ck.Pos)
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			l.changes = changes
			cfg.History = append(append([]Revision(nil), cfg.History...),
				Revision{Step: l.ck.Pos.Step, Epoch: l.ck.Pos.Epoch, Changes: changes})
		}
	}
	if cfg.Train.Threads > 0 {
		torch.SetNumThreads(cfg.Train.Threads)
	}
	dev, err := torch.ParseDevice(cfg.Train.Device)
	if err != nil {
		return fmt.Errorf("train.device: %w", err)
	}
	if dev.Type == torch.CUDADevice && l.group != nil {
		dev = torch.CUDA(l.group.LocalRank()) // one GPU per process
		// the current device of this (locked) thread, so that nothing lands on GPU 0 by default
		if err := torch.SetCUDADevice(dev.Index); err != nil {
			return err
		}
	}
	l.cfg, l.dev = cfg, dev
	torch.ManualSeed(seedFor(cfg.Train.Seed, l.rank, 0))
	return nil
}

// readResumeCheckpoint reads the checkpoint a resume starts from. When the last one is unreadable it
// says so and offers the best one, never falling back silently.
func readResumeCheckpoint(runDir, from string) (*Checkpoint, error) {
	best := from == "best"
	ck, err := ReadCheckpoint(CheckpointPath(runDir, best))
	if err == nil {
		return ck, nil
	}
	if !best && fileExists(CheckpointPath(runDir, true)) {
		return nil, fmt.Errorf("resume: %w\nthe best checkpoint (%s) is still there: continue from it, training again "+
			"the steps after it, with\n  spreadtrain train --out %s --resume --from best", err, CheckpointPath(runDir, true), shellQuote(runDir))
	}
	return nil, fmt.Errorf("resume: %w", err)
}

// build loads the data and assembles the model, the optimizer and the batch pipeline on the device.
func (l *loop) build() (err error) {
	cfg := &l.cfg
	if l.trainSet, l.val, err = loadTrainVal(*cfg, l.opts.DataRoot); err != nil {
		return err
	}
	cfg.Augment = resolveAugment(*cfg, l.trainSet)
	l.log.WithFields(logrus.Fields{"train": l.trainSet.N, "val": l.val.N, "coarse": l.trainSet.CoarseNames,
		"device": l.dev, "libtorch": torch.Version()}).Info("data loaded")

	if l.model, err = NewModel(*cfg, ShapeOf(*cfg, l.trainSet)); err != nil {
		return err
	}
	if !l.opts.Resume { // model.init: pretrained encoder weights (a resume has its own)
		if err := initModel(l.model, cfg.Model); err != nil {
			return err
		}
	}
	if l.fast, err = cfg.Speed.Resolve(l.dev); err != nil {
		return err
	}
	if err := torch.Catch(func() { l.model.ToDevice(l.dev); l.fast.Apply(l.model) }); err != nil {
		return err
	}
	l.params = l.model.Parameters()
	l.log.WithFields(logrus.Fields{"parameters": nn.CountParams(l.params), "encoder_dim": l.model.Encoder.OutDim,
		"method": cfg.Method.Name, "amp_bf16": l.fast.AMP, "channels_last": l.fast.ChannelsLast,
		"cudnn_benchmark": l.fast.CuDNNBenchmark, "foreach": l.fast.Foreach}).Info("model built")
	if l.opt, err = nn.NewOptimizer(l.fast.Optim(cfg.Optim), l.params); err != nil {
		return err
	}
	if l.pipe, err = newPipeline(*cfg, l.trainSet, l.dev, l.rank, l.world); err != nil {
		return err
	}
	l.stepsPerEpoch = l.pipe.stepsPerEpoch()
	l.pos.Plan = configuredPlan(cfg.Schedule)
	return nil
}

// resume restores the checkpoint's weights, optimizer state, generators and position, carries the
// loader over to a changed batch size, and re-plans the schedule when the run's length changed; for
// a new run it plans the schedule. Then rank 0's weights go to every rank.
func (l *loop) resume() error {
	if l.ck != nil {
		if err := l.restore(); err != nil {
			return err
		}
	}
	l.totalSteps = l.pos.Step + remainingSteps(l.pos.Epoch, l.cfg.Train.Epochs, l.pipe.position(), l.stepsPerEpoch)
	if err := l.cfg.Schedule.Validate(l.totalSteps - l.pos.Plan.RampStart); err != nil {
		return err
	}
	if l.group != nil {
		return l.group.BroadcastParameters(l.model.State(), 0)
	}
	return nil
}

func (l *loop) restore() error {
	ck := l.ck
	if err := ck.restore(l.model, l.opt); err != nil {
		return err
	}
	own, err := ck.restoreGenerators(l.rank, l.dev)
	if err != nil {
		return fmt.Errorf("resume: %s: rank %d's generators: %w", ck.Path, l.rank, err)
	}
	if !own { // written by fewer processes: this rank starts a stream of its own
		torch.ManualSeed(seedFor(l.cfg.Train.Seed, l.rank, ck.Pos.Step))
	}
	l.pos, l.savedStep = ck.Pos, ck.Pos.Step
	var saved data.SamplerState
	if err := json.Unmarshal(ck.Pos.Loader, &saved); err != nil {
		return fmt.Errorf("resume: %s: loader state: %w", ck.Path, err)
	}
	st := replanLoader(saved, l.cfg.Train.BatchSize/l.world, l.rank, l.world)
	if err := l.pipe.setState(st); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	old := ck.Config.Normalized()
	if changed(l.changes, "train.epochs", "train.batch_size", "schedule.warmup_steps") || max(saved.World, 1) != l.world {
		oldTotal := l.pos.Step + remainingSteps(l.pos.Epoch, old.Train.Epochs, saved.Pos, stepsPerEpochOf(saved))
		l.pos.Plan = l.pos.Plan.replan(old.Schedule, l.cfg.Schedule, l.pos.Step, oldTotal, changed(l.changes, "schedule.warmup_steps"))
	}
	fields := logrus.Fields{"epoch": l.pos.Epoch, "step": l.pos.Step, "checkpoint": ck.Path}
	if w := max(saved.World, 1); w != l.world { // the same global batches, re-sharded
		fields["processes"] = fmt.Sprintf("%d -> %d", w, l.world)
	}
	for _, c := range l.changes {
		fields[c.Key] = c.From + " -> " + c.To
	}
	if st.Pos != saved.Pos {
		fields["epoch_position"] = fmt.Sprintf("batch %d of %d (was %d of %d)", st.Pos, l.stepsPerEpoch, saved.Pos, stepsPerEpochOf(saved))
	}
	l.log.WithFields(fields).Info("resumed")
	return nil
}

// openLogs writes config.yaml and opens metrics.jsonl (rank 0; the others stay quiet), records the
// changes a resume made, and writes a new run's first checkpoint, so that even a run that diverges
// at its first step can be resumed with other settings.
func (l *loop) openLogs() (err error) {
	if l.cfgYAML, err = yaml.Marshal(l.cfg); err != nil {
		return err
	}
	if l.rank > 0 {
		l.log.SetOutput(io.Discard) // rank 0 speaks for the job
		l.opts.Progress = nil
	} else {
		if err := writeAtomic(filepath.Join(l.opts.RunDir, "config.yaml"), l.cfgYAML); err != nil {
			return err
		}
		if l.metrics, err = openMetrics(l.opts.RunDir, l.pos.Step, l.opts.Resume); err != nil {
			return err
		}
		if len(l.changes) > 0 {
			rec := Record{Kind: "resume", Step: l.pos.Step, Epoch: l.pos.Epoch, Values: map[string]float64{}, Changes: l.changes}
			if err := l.metrics.add(rec); err != nil {
				return err
			}
		}
	}
	if l.ck == nil || l.opts.From == "best" { // from best: last is where the run stands again
		return l.checkpoint()
	}
	return nil
}

// finish draws the training curves and the test embeddings' 2-D projection once the last epoch is done.
func (l *loop) finish() error {
	if l.pos.Epoch < l.cfg.Train.Epochs || l.rank > 0 {
		return nil
	}
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
func prepareRunDir(dir string, resume bool, from string) error {
	if dir == "" {
		return fmt.Errorf("--out: a run folder is required")
	}
	switch from {
	case "", "last", "best":
	default:
		return fmt.Errorf("--from %q: want last or best", from)
	}
	ck := CheckpointPath(dir, from == "best")
	_, statErr := os.Stat(ck)
	switch {
	case resume && statErr != nil:
		return fmt.Errorf("--resume: %s has no checkpoint (%s); start the run without --resume", dir, ck)
	case !resume && fileExists(CheckpointPath(dir, false)):
		return fmt.Errorf("%s already holds a run; pass --resume to continue it, or choose another --out", dir)
	}
	// a crash during a checkpoint write leaves its temporary file behind: the rename never happened
	stale, _ := filepath.Glob(filepath.Join(checkpointDir(dir), ".*.tmp-*"))
	for _, f := range stale {
		os.Remove(f)
	}
	return os.MkdirAll(checkpointDir(dir), 0o755)
}

// loadTrainVal reads the training split and the dataset's official validation split, or where it
// has none holds out the validation share of the training split (seeded, stratified).
func loadTrainVal(cfg Config, root string) (train, val *data.Dataset, err error) {
	if root == "" {
		root = data.DataRoot()
	}
	all, err := cfg.Data.Load(root, "train")
	if err != nil {
		return nil, nil, err
	}
	val, err = cfg.Data.Load(root, "val")
	if err == nil {
		return all, val, nil
	}
	if !errors.Is(err, data.ErrNoValSplit) {
		return nil, nil, err
	}
	if cfg.Train.ValFraction == 0 {
		return all, all.Subset(nil), nil
	}
	// the split moves with the data seed, so that a seed sweep's spread includes the validation draw
	return data.SplitTrainVal(all, cfg.Train.ValFraction, data.DefaultSplitSeed+cfg.Data.Seed)
}

// train runs the epochs left: steps, log records, checkpoints, and validation at each epoch's end.
func (l *loop) train(ctx context.Context) error {
	stepsThisCall := 0
	for l.pos.Epoch < l.cfg.Train.Epochs {
		epoch := l.pos.Epoch + 1
		l.model.SetTrain(true)
		l.bar = nil
		if l.opts.Progress != nil {
			l.bar = newProgress(l.opts.Progress, epoch, l.cfg.Train.Epochs, l.stepsPerEpoch)
		}
		l.acc, l.intervalStart = newAccumulator(), time.Now()
		for {
			if stop, err := l.stopNow(ctx); err != nil {
				return err
			} else if stop {
				// ranks agree on the step to stop after (stopNow), so all of them checkpoint here
				l.interrupted = true
				if cerr := l.checkpoint(); cerr != nil {
					return fmt.Errorf("%w; the checkpoint could not be written either: %v", ErrInterrupted, cerr)
				}
				return fmt.Errorf("%w at step %d; resume with --resume", ErrInterrupted, l.pos.Step)
			}
			if l.opts.MaxSteps > 0 && stepsThisCall >= l.opts.MaxSteps {
				return l.checkpoint()
			}
			more, err := l.step()
			if err != nil {
				return err
			}
			if !more {
				break
			}
			l.pos.Step++
			stepsThisCall++
			if l.pos.Step%l.cfg.Train.LogEvery == 0 || l.pipe.position() == l.stepsPerEpoch {
				if err := l.logInterval(epoch); err != nil {
					return err
				}
			}
			if l.pos.Step%l.cfg.Train.CheckpointEvery == 0 {
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

// step trains on the next batch: objective, backward, all-reduce, clip, optimizer step, accumulate.
// It returns false at the end of an epoch.
func (l *loop) step() (more bool, err error) {
	err = torch.WithScopeErr(func() error {
		in, ok, err := l.pipe.next()
		if err != nil || !ok {
			return err
		}
		more = true
		lr := l.pos.Plan.lr(l.cfg.Schedule, l.cfg.Optim.LR, l.pos.Step, l.totalSteps)
		if l.group != nil {
			in.gather = l.gather
		}
		terms := objective(l.model, l.cfg.Method, l.fast, in)
		if l.collectiveErr != nil {
			return l.collectiveErr
		}
		terms.Total.Backward()
		if l.group != nil {
			if _, err := l.group.AllReduceGradients(l.params); err != nil {
				return err
			}
		}
		if l.cfg.Optim.ClipNorm > 0 {
			nn.ClipGradNorm(l.params, l.cfg.Optim.ClipNorm)
		}
		l.opt.Step(lr)
		l.opt.ZeroGrad()
		l.acc.add(terms, lr)
		return nil
	})
	return more, err
}

// endEpoch validates, keeps the best checkpoint, and checkpoints.
func (l *loop) endEpoch(epoch int) error {
	vals := map[string]float64{}
	best := false
	if l.cfg.Train.EvalEvery > 0 && epoch%l.cfg.Train.EvalEvery == 0 && l.val.N > 0 {
		score, err := l.validate()
		if err != nil {
			return err
		}
		vals["val_coarse_knn_acc"] = score
		if score > l.pos.BestScore {
			l.pos.BestScore, l.pos.BestEpoch = score, epoch
			best = true
		}
	}
	if l.metrics != nil { // ranks > 0 validate too (same time per epoch), but only rank 0 writes
		if err := l.metrics.add(Record{Kind: "epoch", Step: l.pos.Step, Epoch: epoch, Values: vals}); err != nil {
			return err
		}
		l.log.WithFields(logrus.Fields{"epoch": epoch, "val_coarse_knn_acc": vals["val_coarse_knn_acc"]}).Info("epoch done")
	}
	if err := l.checkpoint(); err != nil { // every rank: it gathers their generators
		return err
	}
	if best && l.metrics != nil {
		return copyFile(CheckpointPath(l.opts.RunDir, false), CheckpointPath(l.opts.RunDir, true))
	}
	return nil
}

// validationMemory is how many training images (at most) the validation kNN compares against.
const validationMemory = 10000

// validate scores the encoder by kNN accuracy on the coarse labels of the held-out split, with (a
// strided subset of) the training set as memory: the criterion of the best checkpoint.
func (l *loop) validate() (float64, error) {
	memory := l.trainSet
	if memory.N > validationMemory {
		idx := make([]int, validationMemory)
		for i := range idx {
			idx[i] = i * memory.N / validationMemory
		}
		memory = memory.Subset(idx)
	}
	batch := max(l.cfg.Train.BatchSize, 256)
	trainF, err := Features(l.model, l.pipe.aug, memory, l.dev, batch)
	if err != nil {
		return 0, err
	}
	defer trainF.Free()
	valF, err := Features(l.model, l.pipe.aug, l.val, l.dev, batch)
	if err != nil {
		return 0, err
	}
	defer valF.Free()
	res, err := eval.KNN(eval.Data{X: trainF, Labels: memory.Coarse}, eval.Data{X: valF, Labels: l.val.Coarse},
		eval.KNNConfig{K: l.cfg.Train.KNN})
	if err != nil {
		return 0, err
	}
	return res.Accuracy, nil
}

// logInterval writes the averages of the steps since the last record (after checking that they are
// finite) and updates the progress display. Under data parallelism the averages are over every
// rank's steps, so the log is the same for any number of processes.
func (l *loop) logInterval(epoch int) error {
	if l.acc.steps == 0 {
		return nil
	}
	steps := l.acc.steps
	group := l.group
	if l.interrupted {
		group = nil // this rank's own average
	}
	vals, err := l.acc.flush(group)
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
	return torch.WithScopeErr(func() error {
		rng, err := l.generators() // every rank calls it: a collective
		if err != nil || l.metrics == nil {
			return err
		}
		if err := l.metrics.sync(); err != nil {
			return err
		}
		l.pos.Loader = l.pipe.state()
		if err := saveCheckpoint(CheckpointPath(l.opts.RunDir, false), l.cfgYAML, l.model, l.opt, l.pos, rng); err != nil {
			return err
		}
		l.savedStep = l.pos.Step
		return nil
	})
}

// generators returns every rank's generator states under their checkpoint names on rank 0 (nil on
// the others), so that each rank of a resumed run continues its own augmentation stream. With
// several processes it is a collective, which every rank makes at every checkpoint.
func (l *loop) generators() ([]torch.Named, error) {
	own := generatorStates(l.rank, l.dev)
	if l.group == nil || l.world == 1 {
		return own, nil
	}
	// one row of bytes per rank, the states end to end (the same sizes on every rank), on the
	// group's device: NCCL gathers CUDA tensors only
	parts := make([]*torch.Tensor, len(own))
	for i, s := range own {
		parts[i] = s.Tensor.On(l.dev)
	}
	all, err := l.group.AllGather(torch.Cat(parts, 0).Reshape(1, -1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: gathering the ranks' generator states: %w", err)
	}
	if l.rank > 0 {
		return nil, nil
	}
	all = all.On(torch.CPU)
	var out []torch.Named
	for r := range l.world {
		var at int64
		for i, kind := range generatorKinds(l.dev) {
			n := own[i].Tensor.Numel()
			out = append(out, torch.Named{Name: rngName(r, kind), Tensor: all.Select(0, int64(r)).Narrow(0, at, n).Clone()})
			at += n
		}
	}
	return out, nil
}

// checkFinite stops the run at a non-finite loss with a command that continues it from the last
// good checkpoint with settings computed from those in force.
func (l *loop) checkFinite(vals map[string]float64) error {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := vals[k]; math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("the %s loss became %v before step %d (epoch %d); the run stopped and the last good checkpoint "+
				"(%s, step %d) was kept. Continue it with a lower learning rate%s:\n  %s",
				k, v, l.pos.Step, l.pos.Epoch+1, CheckpointPath(l.opts.RunDir, false), l.savedStep, clipAdvice(l.cfg.Optim), l.recoveryCommand())
		}
	}
	return nil
}

// typicalLR is a learning rate each optimizer usually trains at (the ceiling of the advice after a
// divergence).
var typicalLR = map[string]float64{"adamw": 1e-3, "sgd": 0.1}

// recoveryCommand is the command that resumes a diverged run: a tenth of the learning rate in force
// (at most the optimizer's typical rate), and gradient clipping when there was none.
func (l *loop) recoveryCommand() string {
	lr := l.cfg.Optim.LR / 10
	if t, ok := typicalLR[l.cfg.Optim.Name]; ok && lr > t {
		lr = t
	}
	cmd := []string{"spreadtrain", "train", "--out", shellQuote(l.opts.RunDir), "--resume"}
	if l.opts.DataRoot != "" {
		cmd = append(cmd, "--data-root", shellQuote(l.opts.DataRoot))
	}
	cmd = append(cmd, "--lr", strconv.FormatFloat(lr, 'g', 2, 64))
	if l.cfg.Optim.ClipNorm == 0 {
		cmd = append(cmd, "--clip-norm", "1")
	}
	return strings.Join(cmd, " ")
}

func clipAdvice(o nn.OptimConfig) string {
	if o.ClipNorm == 0 {
		return " and gradient clipping"
	}
	return ""
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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

// flush returns the interval's averages and starts a new interval. With a group, the sums are
// averaged over the ranks first (one all-reduce per log point, not per step): every rank's loss is
// the mean over its own anchors, and the shards are equal, so this is the global batch's loss.
func (a *accumulator) flush(g *dist.Group) (map[string]float64, error) {
	names := make([]string, 0, len(a.sums))
	for k := range a.sums {
		names = append(names, k)
	}
	sort.Strings(names) // the same order on every rank
	defer func() {
		for _, s := range a.sums {
			s.Free()
		}
		a.sums, a.lrSum, a.steps = map[string]*torch.Tensor{}, 0, 0
	}()
	if g != nil {
		ts := make([]*torch.Tensor, len(names))
		for i, k := range names {
			ts[i] = a.sums[k]
		}
		if _, err := g.AllReduceMean(ts); err != nil {
			return nil, err
		}
	}
	vals := map[string]float64{}
	err := torch.Catch(func() {
		for _, k := range names {
			vals[k] = a.sums[k].Item() / float64(a.steps)
		}
	})
	vals["lr"] = a.lrSum / float64(max(1, a.steps))
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
// the contrastive losses contrast this rank's anchors against every rank's samples. A failed
// collective is kept in l.collectiveErr (step returns it) and the local batch stands in, so the
// objective's arithmetic finishes without a panic.
func (l *loop) gather(z, labels *torch.Tensor) (*torch.Tensor, *torch.Tensor, int64) {
	gz, err := l.group.AllGatherWithGrad(z)
	if err == nil {
		var gy *torch.Tensor
		if gy, err = l.group.AllGather(labels); err == nil {
			return gz, gy, int64(l.rank) * z.Size(0)
		}
	}
	l.collectiveErr = fmt.Errorf("all-gather: %w", err)
	return z, labels, 0
}

// stopNow reports whether the run was asked to stop (ctx cancelled by a signal). Data-parallel ranks
// agree on the step to stop after, so that none waits in a collective for a peer that has left.
func (l *loop) stopNow(ctx context.Context) (bool, error) {
	if l.group == nil {
		return ctx.Err() != nil, nil
	}
	return l.group.StopAt(l.pos.Step, ctx.Err() != nil)
}

func barrier(g *dist.Group) error {
	if g == nil {
		return nil
	}
	return g.Barrier()
}
