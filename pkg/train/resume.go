package train

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
)

// Resuming a run continues it with its saved configuration; an override may change the settings that
// leave the model's shape and the experiment's meaning alone (resumable below). Each accepted change
// becomes a Revision in config.yaml's history and a "resume" record in metrics.jsonl.

// Revision is one resume that changed settings, and the step from which the new values apply.
type Revision struct {
	Step    int      `yaml:"step" json:"step"`
	Epoch   int      `yaml:"epoch" json:"epoch"` // epochs completed when it took effect
	Changes []Change `yaml:"changes" json:"changes"`
}

// Change is one setting's old and new value, by its YAML key.
type Change struct {
	Key  string `yaml:"key" json:"key"`
	From string `yaml:"from" json:"from"`
	To   string `yaml:"to" json:"to"`
}

// resumable lists the keys (or whole sections, ending in ".") a resume may change.
var resumable = []string{
	"optimizer.lr", "optimizer.weight_decay", "optimizer.clip_norm", "optimizer.momentum", "optimizer.nesterov",
	"optimizer.beta1", "optimizer.beta2", "optimizer.eps",
	"schedule.warmup_steps", "schedule.min_lr", "schedule.step_every", "schedule.gamma",
	"train.epochs", "train.batch_size", "train.device", "train.threads", "train.checkpoint_every",
	"train.log_every", "train.eval_every", "train.stream_data",
	"speed.",
	// where the same data lives on this machine (a run moved to a GPU box); the loader state's image
	// count must still match the dataset read there
	"data.dir",
}

// frozen says why a key a resume may not change is fixed, by key or section (ending in ".").
var frozen = []struct{ key, why string }{
	{"optimizer.name", "the saved optimizer state (moments or momentum buffers) belongs to the optimizer that wrote it"},
	{"schedule.kind", "a run keeps its schedule's kind; --epochs and --warmup re-plan it from the current step"},
	{"train.seed", "the seed fixes the batches and augmentations the run has been drawing"},
	{"train.val_fraction", "it changes which images are trained on and which validate"},
	{"train.knn", "the best checkpoint is chosen by this validation score; changing it would compare unlike scores"},
	{"data.", "it changes the data the model is trained on"},
	{"model.", "it changes the model's shape, so the saved weights would not fit"},
	{"decoder.", "it changes the decoder's shape, so the saved weights would not fit"},
	{"method.", "it changes the objective the run optimizes, so the run would no longer be one experiment"},
	{"augment.", "it changes the views the model learns from"},
}

func matchKey(key, pattern string) bool {
	if strings.HasSuffix(pattern, ".") {
		return strings.HasPrefix(key, pattern)
	}
	return key == pattern
}

// Resumable reports whether a resume may change key, and if not, why.
func Resumable(key string) (bool, string) {
	for _, p := range resumable {
		if matchKey(key, p) {
			return true, ""
		}
	}
	for _, f := range frozen {
		if matchKey(key, f.key) {
			return false, f.why
		}
	}
	return false, "it is fixed for the life of a run"
}

// flatKeys lists a configuration as "section.key" -> value (lists in YAML flow form), history left out.
func flatKeys(c Config) (map[string]string, error) {
	c.History = nil
	raw, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, sub := range m {
				walk(prefix+k+".", sub)
			}
			return
		}
		key := strings.TrimSuffix(prefix, ".")
		switch v.(type) {
		case []any:
			b, _ := yaml.Marshal(v)
			var n yaml.Node
			yaml.Unmarshal(b, &n)
			n.Content[0].Style = yaml.FlowStyle
			b, _ = yaml.Marshal(n.Content[0])
			out[key] = strings.TrimSpace(string(b))
		case nil:
			out[key] = ""
		default:
			out[key] = fmt.Sprint(v)
		}
	}
	walk("", tree)
	return out, nil
}

// resumeChanges compares the saved configuration with the one a resume asks for, and returns the
// changes (sorted by key), or an error naming the first setting that may not change and why.
func resumeChanges(saved, next Config, pos Position) ([]Change, error) {
	a, err := flatKeys(saved)
	if err != nil {
		return nil, err
	}
	b, err := flatKeys(next)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []Change
	for _, k := range keys {
		if a[k] == b[k] {
			continue
		}
		if ok, why := Resumable(k); !ok {
			return nil, &ResumeRefusal{fmt.Sprintf("--resume: %s cannot change from %s to %s: %s. The saved configuration stays; "+
				"start a new run (another --out) to change it", k, show(a[k]), show(b[k]), why)}
		}
		out = append(out, Change{Key: k, From: a[k], To: b[k]})
	}
	if next.Train.Epochs < pos.Epoch {
		return nil, &ResumeRefusal{fmt.Sprintf("--resume: train.epochs %d: the run has already completed %d epochs", next.Train.Epochs, pos.Epoch)}
	}
	return out, nil
}

// ResumeRefusal is a resume's request to change a setting that must stay (bad input, not a failure).
type ResumeRefusal struct{ msg string }

func (r *ResumeRefusal) Error() string { return r.msg }

func show(v string) string {
	if v == "" {
		return `""`
	}
	return v
}

func changed(changes []Change, keys ...string) bool {
	for _, c := range changes {
		for _, k := range keys {
			if c.Key == k {
				return true
			}
		}
	}
	return false
}

// lrPlan is the learning-rate schedule in force. A fresh run follows the configured schedule from
// step 0 (nn.Schedule.LR, exactly). A resume that changes the run's length (epochs, batch size,
// processes) or its warm-up re-plans from the current step Start, so the rate never jumps:
//   - cosine: the rest of the cycle, from the phase reached at Start, is stretched (or squeezed) over
//     the new remaining steps; a run that had finished its cycle starts a new one (a warm restart);
//   - step: the decays already taken are kept and the next ones follow every step_every steps;
//   - a changed warmup_steps ramps linearly from 0 to the planned rate over that many steps from Start
//     (an unchanged one keeps the original ramp, which counts from step 0);
//   - constant ignores all of this, as before.
type lrPlan struct {
	Start     int     `json:"start"`      // step the plan began at (0: the configured schedule)
	Phase     float64 `json:"phase"`      // cosine: phase in [0, 1) at Start; step: decays taken
	RampStart int     `json:"ramp_start"` // the linear warm-up's first step
	RampSteps int     `json:"ramp_steps"`
}

func configuredPlan(s nn.Schedule) lrPlan { return lrPlan{RampSteps: s.WarmupSteps} }

// lr is the learning rate at step of a run of total steps, for base rate base.
func (p lrPlan) lr(s nn.Schedule, base float64, step, total int) float64 {
	if p.Start == 0 {
		return s.LR(base, step, total)
	}
	if s.Kind == "constant" {
		return base
	}
	ramp := 1.0
	if step < p.RampStart+p.RampSteps {
		ramp = float64(step-p.RampStart+1) / float64(p.RampSteps)
	}
	phase := p.phase(s, step, total)
	if s.Kind == "step" {
		return ramp * base * math.Pow(s.Gamma, phase)
	}
	return ramp * (s.MinLR + 0.5*(base-s.MinLR)*(1+math.Cos(math.Pi*phase)))
}

// phase is the cosine phase (or the number of step decays) reached at step.
func (p lrPlan) phase(s nn.Schedule, step, total int) float64 {
	from := max(p.Start, p.RampStart+p.RampSteps) // the phase advances after the warm-up
	if step < from {
		return p.Phase
	}
	if s.Kind == "step" {
		return p.Phase + float64((step-from)/s.StepEvery)
	}
	span := total - from
	if span <= 0 {
		return p.Phase
	}
	return p.Phase + (1-p.Phase)*math.Min(1, float64(step-from)/float64(span))
}

// replan continues the plan from step under the new schedule and warm-up (see lrPlan).
func (p lrPlan) replan(old, s nn.Schedule, step, oldTotal int, newWarmup bool) lrPlan {
	phase := p.phase(old, step, oldTotal)
	if old.Kind == "cosine" && phase >= 1 {
		phase = 0 // the cycle was over: the added steps are a new one
	}
	next := lrPlan{Start: step, Phase: phase, RampStart: p.RampStart, RampSteps: p.RampSteps}
	if newWarmup {
		next.RampStart, next.RampSteps = step, s.WarmupSteps
	}
	return next
}

// remainingSteps is how many optimizer steps a run has left: the rest of the epoch the loader is in
// (loader position pos of stepsPerEpoch), then whole epochs up to epochs.
func remainingSteps(epochsDone, epochs, pos, stepsPerEpoch int) int {
	if epochsDone >= epochs {
		return 0
	}
	return stepsPerEpoch - pos + (epochs-epochsDone-1)*stepsPerEpoch
}

// replanLoader carries a saved loader position over to another global batch size or number of
// processes. The epoch in progress keeps its permutation: the first k batches of every rank together
// are the permutation's first k * global batch entries, so the run continues at the first batch of
// the new size that holds no image already seen in this epoch (rounded up: fewer than one new batch
// of the epoch's images are skipped). Later epochs are whole.
func replanLoader(saved data.SamplerState, perRank, rank, world int) data.SamplerState {
	next := saved
	next.Rank, next.World, next.BatchSize = rank, world, perRank
	oldGlobal := saved.BatchSize * max(saved.World, 1)
	newGlobal := perRank * max(world, 1)
	if oldGlobal != newGlobal || max(saved.World, 1) != max(world, 1) {
		served := saved.Pos * oldGlobal
		next.Pos = min((served+newGlobal-1)/newGlobal, stepsPerEpochOf(next))
	}
	return next
}

// stepsPerEpochOf is the number of batches per epoch a sampler state implies.
func stepsPerEpochOf(st data.SamplerState) int {
	var s data.Sampler
	st.Pos = 0
	if s.Restore(st) != nil {
		return 0
	}
	return s.StepsPerEpoch()
}
