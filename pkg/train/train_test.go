package train

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/npy"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func TestMain(m *testing.M) {
	torch.SetNumThreads(1)
	if os.Getenv(childEnv) != "" {
		os.Exit(trainChild())
	}
	os.Exit(m.Run())
}

// cifarDir is ../shared/data/cifar10-jpg, or, where the shared data is absent (a user's fresh
// clone), a synthetic folder of the same layout (said loudly).
func cifarDir(t testing.TB) string {
	shared := os.Getenv("SPREADTRAIN_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "shared")
	}
	dir := filepath.Join(shared, "data", "cifar10-jpg")
	if _, err := os.Stat(filepath.Join(dir, "cifar10-jpg-train.tar.gz")); err == nil {
		return dir
	}
	t.Logf("NOTE: %s is absent; using synthetic images in the cifar10-jpg layout", dir)
	dir = filepath.Join(t.TempDir(), "cifar10-jpg")
	r := rand.New(rand.NewPCG(1, 2))
	for _, split := range []string{"train", "test"} {
		for ci, class := range data.CIFAR10ClassNames {
			os.MkdirAll(filepath.Join(dir, split, class), 0o755)
			for i := 0; i < 12; i++ {
				img := image.NewRGBA(image.Rect(0, 0, 32, 32))
				for p := 0; p < 32*32; p++ {
					img.Set(p%32, p/32, color.RGBA{uint8(ci * 25), uint8(r.IntN(256)), uint8(i * 20), 255})
				}
				f, _ := os.Create(filepath.Join(dir, split, class, fmt.Sprintf("%04d.jpg", i)))
				jpeg.Encode(f, img, nil)
				f.Close()
			}
		}
	}
	return dir
}

// tinyConfig is a seconds-long run: 10 images per class, a 4-channel ResNet-18, 2 epochs.
func tinyConfig(t testing.TB) Config {
	cfg := Default()
	cfg.Data = data.Source{Name: "cifar10-jpg", Dir: cifarDir(t), PerClassLimit: 10, TestPerClassLimit: 4}
	cfg.Model.Width, cfg.Decoder.Width = 0.0625, 0.0625
	cfg.Train.Epochs, cfg.Train.BatchSize, cfg.Train.Device = 2, 16, "cpu"
	cfg.Train.CheckpointEvery, cfg.Train.LogEvery, cfg.Train.KNN = 2, 1, 5
	return cfg
}

func stepLosses(t *testing.T, runDir string) []map[string]float64 {
	t.Helper()
	recs, err := ReadMetrics(runDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]float64
	for _, r := range recs {
		if r.Kind == "step" {
			v := map[string]float64{"step": float64(r.Step)}
			for _, k := range []string{"loss", "supcon", "cnce", "ae", "lr"} {
				v[k] = r.Values[k]
			}
			out = append(out, v)
		}
	}
	return out
}

// A run interrupted and resumed produces the same per-step losses as an uninterrupted one.
func TestResumeReproducesLosses(t *testing.T) {
	cfg := tinyConfig(t)
	full := filepath.Join(t.TempDir(), "full")
	if _, err := Run(context.Background(), Options{Config: cfg, RunDir: full}); err != nil {
		t.Fatal(err)
	}
	parted := filepath.Join(t.TempDir(), "parted")
	res, err := Run(context.Background(), Options{Config: cfg, RunDir: parted, MaxSteps: 3})
	if err != nil || res.Steps != 3 {
		t.Fatalf("interrupted run: %+v, %v", res, err)
	}
	if _, err := Run(context.Background(), Options{Config: cfg, RunDir: parted}); err == nil {
		t.Fatal("a second run into the same folder without --resume was accepted")
	}
	if _, err := Run(context.Background(), Options{RunDir: parted, Resume: true}); err != nil {
		t.Fatal(err)
	}
	a, b := stepLosses(t, full), stepLosses(t, parted)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("uninterrupted losses\n%v\nresumed\n%v", a, b)
	}
	// streaming the batches from host memory gives the same run
	streamed := filepath.Join(t.TempDir(), "streamed")
	cfg.Train.StreamData = true
	if _, err := Run(context.Background(), Options{Config: cfg, RunDir: streamed}); err != nil {
		t.Fatal(err)
	}
	if c := stepLosses(t, streamed); !reflect.DeepEqual(a, c) {
		t.Fatalf("resident losses\n%v\nstreamed\n%v", a, c)
	}
	for _, f := range []string{"config.yaml", "metrics.jsonl", "checkpoints/last.safetensors", "checkpoints/best.safetensors",
		"training_curves.png", "embeddings_test.png"} {
		if _, err := os.Stat(filepath.Join(parted, f)); err != nil {
			t.Errorf("run folder lacks %s", f)
		}
	}
	checkEventsMatchMetrics(t, full, 1)
	checkEventsMatchMetrics(t, parted, 2)
	if _, err := Run(context.Background(), Options{RunDir: filepath.Join(t.TempDir(), "none"), Resume: true}); err == nil ||
		!strings.Contains(err.Error(), "no checkpoint") {
		t.Fatalf("resuming a run that does not exist: %v", err)
	}
}

// Cancelling the context (Ctrl-C) stops after writing a checkpoint at the current step.
func TestInterruptWritesCheckpoint(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Train.CheckpointEvery = 1000
	dir := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Run(ctx, Options{Config: cfg, RunDir: dir})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	ck, err := ReadCheckpoint(CheckpointPath(dir, false))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Free()
	if ck.Pos.Step != res.Steps {
		t.Fatalf("checkpoint at step %d, run stopped at %d", ck.Pos.Step, res.Steps)
	}
}

// A non-finite loss stops the run with a clear error and keeps the last good checkpoint.
func TestNonFiniteLossStopsRun(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Optim = Default().Optim
	cfg.Optim.Name, cfg.Optim.LR, cfg.Optim.Momentum = "sgd", 1e30, 0
	cfg.Schedule.Kind = "constant"
	cfg.Train.CheckpointEvery = 1
	dir := filepath.Join(t.TempDir(), "run")
	_, err := Run(context.Background(), Options{Config: cfg, RunDir: dir})
	if err == nil || !strings.Contains(err.Error(), "became") || !strings.Contains(err.Error(), "last good checkpoint") {
		t.Fatalf("got %v, want the non-finite loss error", err)
	}
	ck, err := ReadCheckpoint(CheckpointPath(dir, false))
	if err != nil {
		t.Fatalf("the last good checkpoint is unreadable: %v", err)
	}
	defer ck.Free()
	for name, x := range ck.withPrefix("model") {
		if x.DType().IsFloat() && x.IsFinite().All(false).Item() == 0 {
			t.Fatalf("checkpoint holds non-finite %s", name)
		}
	}
}

// childEnv makes the test binary a training process (for the kill -9 test).
const childEnv = "SPREADTRAIN_TEST_TRAIN_CHILD"

func trainChild() int {
	cfg := tinyConfig(nil_tb{})
	cfg.Train.Epochs, cfg.Train.CheckpointEvery = 1000, 1
	_, err := Run(context.Background(), Options{Config: cfg, RunDir: os.Getenv(childEnv), Resume: os.Getenv("RESUME") == "1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// nil_tb lets tinyConfig run outside a test (the child process).
type nil_tb struct{ testing.TB }

func (nil_tb) Logf(string, ...any) {}
func (nil_tb) TempDir() string     { d, _ := os.MkdirTemp("", "spreadtrain"); return d }

// kill -9 at any moment never leaves a corrupt checkpoint: each kill leaves a readable checkpoint
// (once the first was written) from which the run resumes.
func TestKill9NeverCorruptsCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED in -short mode: kills a training process several times")
	}
	dir := filepath.Join(t.TempDir(), "run")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	lastStep := -1
	for kill := 0; kill < 6; kill++ {
		cmd := execCommand(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+dir, "SPREADTRAIN_SHARED="+os.Getenv("SPREADTRAIN_SHARED"))
		if lastStep >= 0 {
			cmd.Env = append(cmd.Env, "RESUME=1")
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(1500+r.IntN(2500)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		path := CheckpointPath(dir, false)
		if _, err := os.Stat(path); os.IsNotExist(err) && lastStep < 0 {
			os.RemoveAll(dir) // killed before the first checkpoint: the next run starts afresh
			continue
		}
		ck, err := ReadCheckpoint(path)
		if err != nil {
			t.Fatalf("after kill %d: %v", kill, err)
		}
		if ck.Pos.Step < lastStep {
			t.Fatalf("after kill %d the checkpoint went back from step %d to %d", kill, lastStep, ck.Pos.Step)
		}
		lastStep = ck.Pos.Step
		ck.Free()
		if matches, _ := filepath.Glob(filepath.Join(dir, "checkpoints", "*.tmp*")); len(matches) > 1 {
			t.Fatalf("temporary files pile up: %v", matches)
		}
	}
	if lastStep <= 0 {
		t.Fatalf("no progress across kills (last checkpoint step %d)", lastStep)
	}
	t.Logf("6 kills, last checkpoint at step %d", lastStep)
}

var execCommand = exec.Command

// Datasets without published statistics are normalised by their own channel statistics; a constant
// channel (coloured MNIST's blue) is left unscaled instead of dividing by zero.
func TestResolveAugmentMeasuresUnknownDatasets(t *testing.T) {
	d := &data.Dataset{Name: "x", N: 2, C: 3, H: 1, W: 2, Pixels: []uint8{0, 255, 10, 10, 0, 0, 255, 0, 10, 10, 0, 0},
		Coarse: []int64{0, 1}, Fine: []int64{0, 1}, Group: []int64{-1, -1}, CoarseNames: []string{"a", "b"}, FineNames: []string{"a", "b"}}
	cfg := Default()
	cfg.Data.Name = "colored-mnist"
	a := resolveAugment(cfg, d)
	if len(a.Mean) != 3 || a.Mean[0] != 0.5 || a.Std[0] != 0.5 || a.Std[1] != 1 || a.Std[2] != 1 {
		t.Fatalf("mean %v std %v", a.Mean, a.Std)
	}
	if _, err := data.NewAugmenter(a, cfg.Data.Name, 3, 1, 2); err != nil {
		t.Fatal(err)
	}
	cfg.Data.Name = "mnist"
	if a := resolveAugment(cfg, &data.Dataset{C: 1}); a.Mean[0] != 0.1307 {
		t.Fatalf("MNIST mean %v", a.Mean)
	}
}

// Only thanos adds the autoencoder by default; the other methods add it when beta is set.
func TestMethodDefaults(t *testing.T) {
	for method, wantBeta := range map[string]float64{"thanos": DefaultBeta, "thanos-2b": DefaultBeta, "supcon-2b": 0,
		"spread": 0, "supcon": 0, "simclr": 0, "ce": 0} {
		cfg := Default()
		cfg.Method.Name = method
		if got := cfg.Normalized().Method.Beta; got != wantBeta {
			t.Errorf("method %s: beta %v, want %v", method, got, wantBeta)
		}
	}
	cfg := Default()
	cfg.Method.Name, cfg.Method.Beta = "supcon", 1
	if n := cfg.Normalized(); n.Method.Beta != 1 || n.Method.Alpha != 1 {
		t.Errorf("supcon + autoencoder: %+v", n.Method)
	}
}

// A two-backbone run trains both encoders, embeds with both (their L2-normalised features side by
// side), and exports two encoder files that, loaded as two separate models, give that embedding.
func TestTwoBackbonesTrainEmbedAndExport(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Method.Name, cfg.Train.Epochs = "thanos-2b", 1
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), Options{Config: cfg, RunDir: dir}); err != nil {
		t.Fatal(err)
	}
	emb := filepath.Join(t.TempDir(), "emb")
	n, err := Embed(EmbedOptions{RunDir: dir, Split: "test", Out: emb})
	if err != nil {
		t.Fatal(err)
	}
	arr, err := npy.ReadFile(filepath.Join(emb, "embeddings.npy"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := ExportEncoder(CheckpointPath(dir, false), filepath.Join(t.TempDir(), "encoder.safetensors"))
	if err != nil || len(files) != 2 || !strings.HasSuffix(files[1], "encoder_b.safetensors") {
		t.Fatalf("export: %v, %v", files, err)
	}
	cfgN := cfg.Normalized()
	ec := cfgN.Model.EncoderConfig
	ec.InChannels = 3
	test, err := loadSplit(cfgN, "", "test")
	if err != nil {
		t.Fatal(err)
	}
	aug, err := data.NewAugmenter(cfgN.Augment, cfgN.Data.Name, test.C, test.H, test.W)
	if err != nil {
		t.Fatal(err)
	}
	var parts []*torch.Tensor
	for _, f := range files {
		enc, err := nn.NewEncoder(ec)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Free()
		saved, meta, err := nn.ReadState(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := nn.LoadInto(append(enc.Parameters(), enc.Buffers()...), saved, true); err != nil {
			t.Fatalf("%s does not load strictly into one encoder: %v", f, err)
		}
		nn.FreeState(saved)
		if meta["representation"] == "" {
			t.Errorf("%s: metadata lacks the representation note: %v", f, meta)
		}
		feats, err := Features(&Model{Encoder: enc}, aug, test, torch.CPU, 256)
		if err != nil {
			t.Fatal(err)
		}
		defer feats.Free()
		parts = append(parts, feats)
	}
	var want []float64
	torch.WithScope(func() { want = joinBackbones(parts[0], parts[1]).Float64s() })
	f32, ok := arr.Data.([]float32)
	if !ok {
		t.Fatalf("embeddings.npy holds %s, want float32", arr.DType)
	}
	got := make([]float64, len(f32))
	for i, v := range f32 {
		got[i] = float64(v)
	}
	if n != test.N || len(got) != len(want) {
		t.Fatalf("embeddings: %d values for %d images, want %d", len(got), n, len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-5 {
			t.Fatalf("embedding value %d: %v, the two exported models give %v", i, got[i], want[i])
		}
	}
}
