package train

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// A checkpoint is one safetensors file holding the model state ("model." names), the optimizer state
// ("optim." names) and every rank's random generators ("rng.cpu", "rng.cuda" for rank 0,
// "rng.rank<r>.cpu", "rng.rank<r>.cuda" for the others: rngName), with the loop position and the
// resolved configuration in its metadata. One file per checkpoint, written atomically, so a crash at
// any moment leaves the previous checkpoint intact.
const (
	lastCheckpoint = "last.safetensors"
	bestCheckpoint = "best.safetensors"
)

// Position is where the loop stands when a checkpoint is written.
type Position struct {
	Epoch     int     // epochs completed
	Step      int     // optimizer steps completed
	Loader    []byte  // the batch iterator's state
	BestScore float64 // best validation score so far (-1 when none)
	BestEpoch int
	Plan      lrPlan // the learning-rate schedule in force
}

func checkpointDir(runDir string) string { return filepath.Join(runDir, "checkpoints") }

// CheckpointPath is the path of the last or best checkpoint of a run.
func CheckpointPath(runDir string, best bool) string {
	if best {
		return filepath.Join(checkpointDir(runDir), bestCheckpoint)
	}
	return filepath.Join(checkpointDir(runDir), lastCheckpoint)
}

// saveCheckpoint writes the model, the optimizer and the generator states rng (named by rngName).
func saveCheckpoint(path string, cfgYAML []byte, m *Model, opt nn.Optimizer, pos Position, rng []torch.Named) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	named := nn.Prefixed("model", m.State())
	optState, optMeta := opt.State()
	named = append(named, nn.Prefixed("optim", optState)...)
	named = append(named, rng...)
	plan, err := json.Marshal(pos.Plan)
	if err != nil {
		return err
	}
	meta := map[string]string{
		"format":     "spreadtrain-checkpoint-1",
		"config":     string(cfgYAML),
		"epoch":      strconv.Itoa(pos.Epoch),
		"step":       strconv.Itoa(pos.Step),
		"loader":     base64.StdEncoding.EncodeToString(pos.Loader),
		"best_score": strconv.FormatFloat(pos.BestScore, 'g', -1, 64),
		"best_epoch": strconv.Itoa(pos.BestEpoch),
		"lr_plan":    string(plan),
	}
	for k, v := range optMeta {
		meta["optim."+k] = v
	}
	return nn.SaveState(path, named, meta)
}

// Checkpoint is a checkpoint read back from disk.
type Checkpoint struct {
	Path    string
	Config  Config
	Pos     Position
	tensors map[string]*torch.Tensor
	meta    map[string]string
}

// ReadCheckpoint reads a checkpoint file; Free releases its tensors.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	tensors, meta, err := nn.ReadState(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	ck := &Checkpoint{Path: path, tensors: tensors, meta: meta}
	bad := func(field string) error {
		nn.FreeState(tensors)
		return fmt.Errorf("checkpoint %s: missing or malformed %q (not a spreadtrain checkpoint?)", path, field)
	}
	if meta["format"] != "spreadtrain-checkpoint-1" {
		return nil, bad("format")
	}
	if ck.Config, err = ParseConfigYAML([]byte(meta["config"])); err != nil {
		return nil, bad("config")
	}
	if ck.Pos.Epoch, err = strconv.Atoi(meta["epoch"]); err != nil {
		return nil, bad("epoch")
	}
	if ck.Pos.Step, err = strconv.Atoi(meta["step"]); err != nil {
		return nil, bad("step")
	}
	if ck.Pos.Loader, err = base64.StdEncoding.DecodeString(meta["loader"]); err != nil {
		return nil, bad("loader")
	}
	if ck.Pos.BestScore, err = strconv.ParseFloat(meta["best_score"], 64); err != nil {
		return nil, bad("best_score")
	}
	if ck.Pos.BestEpoch, err = strconv.Atoi(meta["best_epoch"]); err != nil {
		return nil, bad("best_epoch")
	}
	ck.Pos.Plan = configuredPlan(ck.Config.Schedule) // checkpoints from before re-planning
	if raw, ok := meta["lr_plan"]; ok && json.Unmarshal([]byte(raw), &ck.Pos.Plan) != nil {
		return nil, bad("lr_plan")
	}
	return ck, nil
}

// withPrefix returns the tensors under prefix, with the prefix removed.
func (ck *Checkpoint) withPrefix(prefix string) map[string]*torch.Tensor {
	out := map[string]*torch.Tensor{}
	for name, t := range ck.tensors {
		if rest, ok := strings.CutPrefix(name, prefix+"."); ok {
			out[rest] = t
		}
	}
	return out
}

// LoadModel copies the model state into m (strictly: every tensor must match).
func (ck *Checkpoint) LoadModel(m *Model) error {
	if err := nn.LoadInto(m.State(), ck.withPrefix("model"), true); err != nil {
		return fmt.Errorf("checkpoint %s: %w", ck.Path, err)
	}
	return nil
}

// restore loads the optimizer too (resume).
func (ck *Checkpoint) restore(m *Model, opt nn.Optimizer) error {
	if err := ck.LoadModel(m); err != nil {
		return err
	}
	optMeta := map[string]string{}
	for k, v := range ck.meta {
		if rest, ok := strings.CutPrefix(k, "optim."); ok {
			optMeta[rest] = v
		}
	}
	if err := opt.LoadState(ck.withPrefix("optim"), optMeta); err != nil {
		return fmt.Errorf("checkpoint %s: %w", ck.Path, err)
	}
	return nil
}

// rngName is the checkpoint name of rank's generator state on a device type (cpu, cuda). Rank 0's
// names are those of checkpoints from before every rank saved its own.
func rngName(rank int, kind string) string {
	if rank == 0 {
		return "rng." + kind
	}
	return fmt.Sprintf("rng.rank%d.%s", rank, kind)
}

// generatorKinds are the generators a process on dev draws from: the CPU's, and on CUDA the device's.
func generatorKinds(dev torch.Device) []string {
	if dev.Type == torch.CUDADevice {
		return []string{"cpu", "cuda"}
	}
	return []string{"cpu"}
}

// generatorStates returns this process's generator states (generatorKinds), named for rank.
func generatorStates(rank int, dev torch.Device) []torch.Named {
	var out []torch.Named
	for _, kind := range generatorKinds(dev) {
		d := torch.CPU
		if kind == "cuda" {
			d = dev
		}
		out = append(out, torch.Named{Name: rngName(rank, kind), Tensor: torch.RNGState(d)})
	}
	return out
}

// restoreGenerators sets rank's generators to the states the checkpoint holds for it, and reports
// whether it holds them (a checkpoint written by fewer processes, or by a version that saved rank
// 0's only, does not).
func (ck *Checkpoint) restoreGenerators(rank int, dev torch.Device) (bool, error) {
	cpu, ok := ck.tensors[rngName(rank, "cpu")]
	if !ok {
		return false, nil
	}
	return true, torch.Catch(func() {
		torch.SetRNGState(torch.CPU, cpu)
		if s, ok := ck.tensors[rngName(rank, "cuda")]; ok && dev.Type == torch.CUDADevice {
			torch.SetRNGState(dev, s)
		}
	})
}

// Free releases the checkpoint's tensors.
func (ck *Checkpoint) Free() { nn.FreeState(ck.tensors) }
