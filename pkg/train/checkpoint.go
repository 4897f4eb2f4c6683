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
// ("optim." names) and the random generators ("rng.cpu", "rng.cuda"), with the loop position and the
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

func saveCheckpoint(path string, cfgYAML []byte, m *Model, opt nn.Optimizer, pos Position, dev torch.Device) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	named := nn.Prefixed("model", m.State())
	optState, optMeta := opt.State()
	named = append(named, nn.Prefixed("optim", optState)...)
	var rng []*torch.Tensor
	err := torch.Catch(func() {
		cpu := torch.RNGState(torch.CPU)
		rng = append(rng, cpu)
		named = append(named, torch.Named{Name: "rng.cpu", Tensor: cpu})
		if dev.Type == torch.CUDADevice {
			cuda := torch.RNGState(dev)
			rng = append(rng, cuda)
			named = append(named, torch.Named{Name: "rng.cuda", Tensor: cuda})
		}
	})
	defer func() {
		for _, t := range rng {
			t.Free()
		}
	}()
	if err != nil {
		return err
	}
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

// restore loads the optimizer and the random generators too (resume).
func (ck *Checkpoint) restore(m *Model, opt nn.Optimizer, dev torch.Device) error {
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
	return torch.Catch(func() {
		if s, ok := ck.tensors["rng.cpu"]; ok {
			torch.SetRNGState(torch.CPU, s)
		}
		if s, ok := ck.tensors["rng.cuda"]; ok && dev.Type == torch.CUDADevice {
			torch.SetRNGState(dev, s)
		}
	})
}

// Free releases the checkpoint's tensors.
func (ck *Checkpoint) Free() { nn.FreeState(ck.tensors) }
