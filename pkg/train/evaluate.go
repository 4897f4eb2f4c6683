package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/eval"
	"github.com/spreadtrain/spreadtrain/pkg/npy"
	"github.com/spreadtrain/spreadtrain/pkg/plot"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// trained is a run's encoder restored from one of its checkpoints, with what is needed to feed it.
type trained struct {
	cfg   Config
	model *Model
	aug   *data.Augmenter
	dev   torch.Device
	ck    string
}

// loadTrained rebuilds a run's model from a checkpoint ("best" or "last") on the run's device, or on
// the CPU when that device is well-formed but unavailable here (a GPU run evaluated on a laptop).
func loadTrained(runDir, which string, shapeOf *data.Dataset) (*trained, error) {
	path, err := RunCheckpoint(runDir, which)
	if err != nil {
		return nil, err
	}
	ck, err := ReadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	defer ck.Free()
	cfg := ck.Config.Normalized()
	dev, err := torch.ParseDevice(cfg.Train.Device)
	if errors.Is(err, torch.ErrDeviceUnavailable) {
		// a run trained on a GPU is still evaluated on a machine without one, and says so
		logrus.Warnf("%s: train.device %s is not here (%v); evaluating on the CPU", path, cfg.Train.Device, err)
		dev = torch.CPU
	} else if err != nil {
		return nil, fmt.Errorf("%s: train.device: %w", path, err)
	}
	m, err := NewModel(cfg, ShapeOf(cfg, shapeOf))
	if err != nil {
		return nil, err
	}
	if err := ck.LoadModel(m); err != nil {
		m.Free()
		return nil, err
	}
	if err := torch.Catch(func() { m.ToDevice(dev) }); err != nil {
		m.Free()
		return nil, err
	}
	aug, err := data.NewAugmenter(cfg.Augment, cfg.Data.Name, shapeOf.C, shapeOf.H, shapeOf.W)
	if err != nil {
		m.Free()
		return nil, err
	}
	return &trained{cfg: cfg, model: m, aug: aug, dev: dev, ck: path}, nil
}

// RunConfigOf reads the configuration a run was started with.
func RunConfigOf(runDir string) (Config, error) {
	raw, err := os.ReadFile(filepath.Join(runDir, "config.yaml"))
	if err != nil {
		return Config{}, fmt.Errorf("%s is not a spreadtrain run folder: %w", runDir, err)
	}
	cfg, err := ParseConfigYAML(raw)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", filepath.Join(runDir, "config.yaml"), err)
	}
	return cfg.Normalized(), nil
}

// loadSplit reads a split of a run's dataset; "train" is the training part (validation held out).
func loadSplit(cfg Config, dataRoot, split string) (*data.Dataset, error) {
	switch split {
	case "train":
		tr, _, err := loadTrainVal(cfg, dataRoot)
		return tr, err
	case "val":
		_, val, err := loadTrainVal(cfg, dataRoot)
		return val, err
	case "test":
		if dataRoot == "" {
			dataRoot = data.DataRoot()
		}
		return cfg.Data.Load(dataRoot, "test")
	}
	return nil, fmt.Errorf("--split %q: want train, val or test", split)
}

// EmbedOptions say which embeddings to write.
type EmbedOptions struct {
	RunDir, DataRoot, Split, Checkpoint, Out string
}

// Embed writes the encoder's features of a split as embeddings.npy [N, F] (float32), with
// labels.npy (coarse), fine_labels.npy and groups.npy (int64) where known.
func Embed(o EmbedOptions) (n int, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg, err := RunConfigOf(o.RunDir)
	if err != nil {
		return 0, err
	}
	d, err := loadSplit(cfg, o.DataRoot, o.Split)
	if err != nil {
		return 0, err
	}
	tr, err := loadTrained(o.RunDir, o.Checkpoint, d)
	if err != nil {
		return 0, err
	}
	defer tr.model.Free()
	f, err := Features(tr.model, tr.aug, d, tr.dev, 256)
	if err != nil {
		return 0, err
	}
	defer f.Free()
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return 0, err
	}
	shape := f.Shape()
	files := map[string]*npy.Array{
		"embeddings.npy": npy.FromFloat32(f.Float32s(), int(shape[0]), int(shape[1])),
		"labels.npy":     npy.FromInt64(d.Coarse),
	}
	if known(d.Fine) {
		files["fine_labels.npy"] = npy.FromInt64(d.Fine)
	}
	if known(d.Group) {
		files["groups.npy"] = npy.FromInt64(d.Group)
	}
	for name, a := range files {
		if err := npy.WriteFile(filepath.Join(o.Out, name), a); err != nil {
			return 0, err
		}
	}
	return d.N, nil
}

// known reports whether labels are present (loaders use -1 for unknown).
func known(labels []int64) bool {
	for _, l := range labels {
		if l < 0 {
			return false
		}
	}
	return len(labels) > 0
}

// EvalOptions configure the evaluation of a run.
type EvalOptions struct {
	RunDir, DataRoot, Checkpoint string
	Eval                         eval.Config
	// ProbeEpochs > 0 adds the reference protocol's fine-label probe trained on augmented images
	// through the frozen encoder for that many epochs (the reference uses 100).
	ProbeEpochs int
	// On is the split scored: "test" (the default) or "val", the held-out part of the training split,
	// on which hyper-parameters are chosen (experiments/select.sh) without touching the test split.
	On string
	// GeorgeFull.Epochs > 0 adds GEORGE's full-network variant where the data has groups and a
	// validation split (georgeFull); it runs last, since it changes the loaded encoder.
	GeorgeFull GeorgeFullConfig
}

// MetricsFile is the file an evaluation on split writes in the run folder.
func MetricsFile(on string) string {
	if on == "val" {
		return "metrics_val.json"
	}
	return "metrics.json"
}

// EvaluateRun evaluates a run's encoder on its dataset (linear probes and kNN on the coarse and fine
// labels, subgroup discovery, group DRO where groups exist, spread diagnostics) and writes
// RUNDIR/metrics.json, RUNDIR/report.md and RUNDIR/embeddings_test.png.
func EvaluateRun(o EvalOptions) (*eval.Report, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg, err := RunConfigOf(o.RunDir)
	if err != nil {
		return nil, err
	}
	trainSet, valSet, err := loadTrainVal(cfg, o.DataRoot)
	if err != nil {
		return nil, err
	}
	on := o.On
	if on == "" {
		on = "test"
	}
	testSet, err := loadSplit(cfg, o.DataRoot, on)
	if err != nil {
		return nil, err
	}
	if testSet.N == 0 {
		return nil, fmt.Errorf("%s: the %s split is empty (train.val_fraction 0?)", o.RunDir, on)
	}
	tr, err := loadTrained(o.RunDir, o.Checkpoint, trainSet)
	if err != nil {
		return nil, err
	}
	defer tr.model.Free()
	trainF, err := Features(tr.model, tr.aug, trainSet, tr.dev, 256)
	if err != nil {
		return nil, err
	}
	defer trainF.Free()
	testF, err := Features(tr.model, tr.aug, testSet, tr.dev, 256)
	if err != nil {
		return nil, err
	}
	defer testF.Free()
	in := eval.Inputs{Train: trainF, Test: testF, TrainLabels: trainSet.Coarse, TestLabels: testSet.Coarse}
	if known(trainSet.Fine) && known(testSet.Fine) && len(trainSet.FineNames) > len(trainSet.CoarseNames) {
		in.TrainFine, in.TestFine = trainSet.Fine, testSet.Fine
	}
	var valF *torch.Tensor
	if known(trainSet.Group) && known(testSet.Group) {
		in.TrainGroups, in.TestGroups = trainSet.Group, testSet.Group
		// GEORGE selects its group DRO head on the validation split by the found groups
		if valSet.N > 0 {
			if valF, err = Features(tr.model, tr.aug, valSet, tr.dev, 256); err != nil {
				return nil, err
			}
			defer valF.Free()
			in.Val, in.ValLabels = valF, valSet.Coarse
			if known(valSet.Group) {
				in.ValGroups = valSet.Group
			}
		}
	}
	report, err := eval.Evaluate(in, o.Eval)
	if err != nil {
		return nil, err
	}
	if o.ProbeEpochs > 0 && in.TrainFine != nil {
		if report.FineProbeAugmented, err = augmentedProbe(tr, trainSet, testSet, testF, o.ProbeEpochs, cfg.Train.Seed); err != nil {
			return nil, err
		}
	}
	if o.GeorgeFull.Epochs > 0 && (report.George == nil || on != "test") {
		// it selects on the validation split and reports on the test split's true groups
		logrus.Warnf("%s: GEORGE's full-network variant skipped: it needs groups, a validation split and --on test", o.RunDir)
	} else if o.GeorgeFull.Epochs > 0 {
		valFound, err := report.Subgroups.AssignRows(eval.Data{X: valF, Labels: valSet.Coarse})
		if err != nil {
			return nil, err
		}
		gc := o.GeorgeFull
		gc.Seed = cfg.Train.Seed
		if report.GeorgeFull, err = georgeFull(tr, trainSet, valSet, testSet, report.Subgroups.Assign, valFound, gc); err != nil {
			return nil, err
		}
	}
	if err := report.WriteJSON(filepath.Join(o.RunDir, MetricsFile(on))); err != nil {
		return nil, err
	}
	if on != "test" {
		return report, nil // the report and the plot describe the test split
	}
	md := fmt.Sprintf("# Evaluation of %s\n\nCheckpoint `%s`; method %s on %s (coarse classes: %v).\n\n%s",
		o.RunDir, tr.ck, cfg.Method.Name, cfg.Data.Name, trainSet.CoarseNames, report.Markdown())
	if err := writeAtomic(filepath.Join(o.RunDir, "report.md"), []byte(md)); err != nil {
		return nil, err
	}
	if err := embeddingPlot(o.RunDir, cfg, testF, testSet); err != nil {
		return nil, err
	}
	return report, nil
}

// embeddingPlot draws the test embeddings' 2-D projection coloured by fine label: the picture of
// collapse (one blob per coarse class) versus spread.
func embeddingPlot(runDir string, cfg Config, feats *torch.Tensor, d *data.Dataset) error {
	labels, names := d.Fine, d.FineNames
	if !known(labels) {
		labels, names = d.Coarse, d.CoarseNames
	}
	nameMap := map[int64]string{}
	for i, n := range names {
		nameMap[int64(i)] = n
	}
	title := fmt.Sprintf("%s, %s: test embeddings by fine label", cfg.Method.Name, cfg.Data.Name)
	return eval.EmbeddingPlot(filepath.Join(runDir, "embeddings_test.png"), title, feats, labels, nameMap, 3000, 0)
}

// PlotCurves draws RUNDIR/training_curves.png from the metrics log.
func PlotCurves(runDir string) error {
	records, err := ReadMetrics(runDir)
	if err != nil {
		return err
	}
	var pts []plot.Record
	for _, r := range records {
		if r.Kind == "step" || len(r.Values) > 0 {
			pts = append(pts, plot.Record{Step: int64(r.Step), Values: r.Values})
		}
	}
	if len(pts) == 0 {
		return nil
	}
	names := append(slices.Clone(lossTerms), "val_coarse_knn_acc", "lr")
	var present []string
	for _, n := range names {
		for _, p := range pts {
			if _, ok := p.Values[n]; ok {
				present = append(present, n)
				break
			}
		}
	}
	return plot.TrainingCurves(filepath.Join(runDir, "training_curves.png"), "training curves: "+runDir, pts, present...)
}
