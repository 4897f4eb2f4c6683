// Package train runs spreadtrain's training loop: model assembly, the objective of each method,
// checkpoints that survive crashes, resume, metrics and logging.
package train

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spreadtrain/spreadtrain/internal/atomicfile"
	"github.com/spreadtrain/spreadtrain/pkg/autoenc"
	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/nn"
	"github.com/spreadtrain/spreadtrain/pkg/supcon"
)

// Config is a whole run, as written to RUNDIR/config.yaml.
type Config struct {
	Data     data.Source        `yaml:"data"`
	Model    ModelConfig        `yaml:"model"`
	Method   MethodConfig       `yaml:"method"`
	Decoder  autoenc.Config     `yaml:"decoder"`
	Augment  data.AugmentConfig `yaml:"augment"`
	Optim    nn.OptimConfig     `yaml:"optimizer"`
	Schedule nn.Schedule        `yaml:"schedule"`
	Train    RunConfig          `yaml:"train"`
	Speed    SpeedConfig        `yaml:"speed"`
	// History lists the resumes that changed settings (written by spreadtrain; the values above are
	// the ones in force).
	History []Revision `yaml:"history,omitempty"`
}

// ModelConfig is the encoder plus an optional projection head.
type ModelConfig struct {
	nn.EncoderConfig `yaml:",inline"`
	// Head is "none" (the losses act on the encoder output, as in the reference code) or "mlp" (a
	// SimCLR-style projection head; evaluation still uses the encoder output).
	Head       string `yaml:"head"`
	HeadDim    int    `yaml:"head_dim"`
	HeadHidden int    `yaml:"head_hidden"`
	// Init starts the encoder from pretrained weights: a .safetensors file under torchvision's names
	// (what `export` writes; see init.go). InitSkip lists what is deliberately not loaded.
	Init     string   `yaml:"init"`
	InitSkip []string `yaml:"init_skip"`
}

// MethodConfig selects the objective: L = L_spread + beta * L_AE + gamma * L_CE (METHOD.md).
type MethodConfig struct {
	// Name is thanos (L_spread + autoencoder, one backbone), spread (L_spread), supcon, simclr, ce,
	// thanos-2b (backbone A: L_spread, backbone B: autoencoder, cross-entropy on both side by side) or
	// supcon-2b (two SupCon backbones, cross-entropy on both side by side).
	Name        string  `yaml:"name"`
	Alpha       float64 `yaml:"alpha"`       // L_spread = alpha * SupCon + (1 - alpha) * cNCE
	Beta        float64 `yaml:"beta"`        // autoencoder weight (thanos, thanos-2b: DefaultBeta when unset; other contrastive methods may set it)
	Gamma       float64 `yaml:"gamma"`       // cross-entropy weight on the coarse labels
	Temperature float64 `yaml:"temperature"` // tau
	Denominator string  `yaml:"denominator"` // SupCon's: all or negatives
	Views       int     `yaml:"views"`       // augmented views per image (>= 2 for contrastive methods)
	// Compat reproduces the reference code's loss (one-directional cross-view similarities, the
	// positive-logit clamp, its norm quirk; METHOD.md), with 2 views.
	Compat bool `yaml:"compat"`
}

// RunConfig is the loop itself.
type RunConfig struct {
	Epochs      int     `yaml:"epochs"`
	BatchSize   int     `yaml:"batch_size"` // images per step (global, over all processes)
	Seed        uint64  `yaml:"seed"`
	Device      string  `yaml:"device"`  // auto, cpu, cuda, cuda:N
	Threads     int     `yaml:"threads"` // libtorch intra-op threads; 0 = libtorch's default
	ValFraction float64 `yaml:"val_fraction"`
	// CheckpointEvery writes RUNDIR/checkpoints/last every this many steps (and at every epoch end).
	CheckpointEvery int `yaml:"checkpoint_every"`
	LogEvery        int `yaml:"log_every"`  // steps between metric records
	EvalEvery       int `yaml:"eval_every"` // epochs between validation passes (best checkpoint)
	KNN             int `yaml:"knn"`        // neighbours of the validation kNN classifier
	// StreamData keeps the training images in host memory and streams each batch to the device with Go
	// workers, for datasets too big for device memory; otherwise they are uploaded once. Same batches.
	StreamData bool `yaml:"stream_data"`
}

// Methods lists the method names. thanos is the paper's one-backbone method; thanos-2b is what the
// reference code releases as Thanos (two backbones, docs/METHOD.md) and supcon-2b its baseline of equal
// capacity (two SupCon backbones trained in the same run the same way).
var Methods = []string{"thanos", "spread", "supcon", "simclr", "ce", "thanos-2b", "supcon-2b"}

// DefaultBeta is the autoencoder weight of thanos and thanos-2b when none is given. The reference's
// weight 1 lets the pixel MSE drown the class signal in one backbone at small budgets (docs/METHOD.md,
// "beta"); 0.3 is what the main job's selection on the validation split chose
// (experiments/select.sh, experiments/results/select-mnist-demo.md).
const DefaultBeta = 0.3

// TwoBackbones reports whether the method trains two encoders whose features are concatenated.
func (m MethodConfig) TwoBackbones() bool { return m.Name == "thanos-2b" || m.Name == "supcon-2b" }

// Default is the configuration every file and flag overrides: the paper's method with the reference
// code's optimisation settings (METHOD.md, "Reference training setup").
func Default() Config {
	return Config{
		Data:     data.Source{Name: "mnist", Agreement: 0.95},
		Model:    ModelConfig{EncoderConfig: nn.EncoderConfig{Arch: "resnet18", Stem: "cifar", Width: 1}, Head: "none", HeadDim: 128, HeadHidden: 512},
		Method:   MethodConfig{Name: "thanos", Alpha: 0.5, Beta: 0, Gamma: 0, Temperature: 0.5, Denominator: "all", Views: 2},
		Decoder:  autoenc.Config{Width: 1, ClassEmbDim: 16},
		Augment:  data.DefaultAugment(),
		Optim:    nn.OptimConfig{Name: "adamw", LR: 3e-4, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Momentum: 0.9},
		Schedule: nn.Schedule{Kind: "cosine", StepEvery: 1, Gamma: 0.1},
		Train: RunConfig{Epochs: 200, BatchSize: 128, Seed: 0, Device: "auto", ValFraction: 0.1, CheckpointEvery: 500,
			LogEvery: 10, EvalEvery: 1, KNN: 200},
		Speed: DefaultSpeed(),
	}
}

//go:embed configs/*.yaml
var builtinConfigs embed.FS

// BuiltinConfigs lists the named configurations shipped with spreadtrain.
func BuiltinConfigs() []string {
	entries, _ := builtinConfigs.ReadDir("configs")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}

// LoadConfig starts from Default and applies a YAML file, or a built-in configuration by name.
// Unknown keys are errors that name the key, so a typo never silently falls back to a default.
func LoadConfig(pathOrName string) (Config, error) {
	cfg := Default()
	if pathOrName == "" {
		return cfg, nil
	}
	raw, err := os.ReadFile(pathOrName)
	if err != nil {
		builtin, berr := builtinConfigs.ReadFile("configs/" + pathOrName + ".yaml")
		if berr != nil {
			return cfg, fmt.Errorf("config %s: %v (built-in configurations: %s)", pathOrName, err, strings.Join(BuiltinConfigs(), ", "))
		}
		raw = builtin
	}
	if err := decodeStrict(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", pathOrName, err)
	}
	cfg.History = nil // a run's config.yaml may start a new run, which has its own history
	return cfg, nil
}

// decodeStrict applies a YAML document to cfg: the keys it names replace their values, the others
// stay; an unknown key is an error that names it.
func decodeStrict(raw []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// SetKey sets one configuration key ("section.key", as in the YAML file) to a YAML value, through the
// same strict decoding as a file: an unknown key is an error listing the section's keys.
func SetKey(cfg *Config, key, value string) error {
	parts := strings.Split(key, ".")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " :#\t") {
			return fmt.Errorf("%q is not a configuration key (want section.key, e.g. optimizer.lr)", key)
		}
	}
	if parts[0] == "history" {
		return fmt.Errorf("history is written by spreadtrain when a resume changes settings")
	}
	var doc strings.Builder
	for i, p := range parts {
		doc.WriteString(strings.Repeat("  ", i) + p + ":")
		if i < len(parts)-1 {
			doc.WriteString("\n")
		}
	}
	doc.WriteString(" " + value + "\n")
	if err := decodeStrict([]byte(doc.String()), cfg); err != nil {
		if strings.Contains(err.Error(), "not found in type") {
			return fmt.Errorf("unknown configuration key %s (%s)", key, keysUnder(parts[0]))
		}
		return fmt.Errorf("%s = %s: %w", key, value, err)
	}
	return nil
}

// keysUnder describes the keys of a section, for an error message.
func keysUnder(section string) string {
	flat, _ := flatKeys(Default())
	var keys, sections []string
	seen := map[string]bool{}
	for k := range flat {
		if rest, ok := strings.CutPrefix(k, section+"."); ok {
			keys = append(keys, rest)
		}
		if s, _, _ := strings.Cut(k, "."); !seen[s] {
			seen[s] = true
			sections = append(sections, s)
		}
	}
	sort.Strings(keys)
	sort.Strings(sections)
	if len(keys) == 0 {
		return "sections: " + strings.Join(sections, ", ")
	}
	return section + " has: " + strings.Join(keys, ", ")
}

// Validate checks every section and names the field at fault.
func (c Config) Validate() error {
	if err := c.Data.Validate(); err != nil {
		return err
	}
	if err := c.Model.Validate(); err != nil {
		return err
	}
	if err := c.Method.Validate(); err != nil {
		return err
	}
	if c.Method.Beta > 0 {
		if err := c.Decoder.Validate(); err != nil {
			return err
		}
	}
	if err := c.Augment.Validate(); err != nil {
		return err
	}
	if err := c.Optim.Validate(); err != nil {
		return err
	}
	if err := c.Speed.Validate(); err != nil {
		return err
	}
	if err := c.Schedule.Validate(0); err != nil {
		return err
	}
	t := c.Train
	switch {
	case t.Epochs < 1:
		return fmt.Errorf("train.epochs %d: must be >= 1", t.Epochs)
	case t.BatchSize < 2:
		return fmt.Errorf("train.batch_size %d: must be >= 2", t.BatchSize)
	case t.ValFraction < 0 || t.ValFraction >= 1:
		return fmt.Errorf("train.val_fraction %v: must be in [0, 1)", t.ValFraction)
	case t.CheckpointEvery < 1:
		return fmt.Errorf("train.checkpoint_every %d: must be >= 1", t.CheckpointEvery)
	case t.LogEvery < 1:
		return fmt.Errorf("train.log_every %d: must be >= 1", t.LogEvery)
	case t.EvalEvery < 0:
		return fmt.Errorf("train.eval_every %d: must be >= 0", t.EvalEvery)
	case t.KNN < 1:
		return fmt.Errorf("train.knn %d: must be >= 1", t.KNN)
	case t.Threads < 0:
		return fmt.Errorf("train.threads %d: must be >= 0", t.Threads)
	}
	return nil
}

// Validate checks the model section.
func (m ModelConfig) Validate() error {
	e := m.EncoderConfig
	if e.InChannels == 0 {
		e.InChannels = 3 // filled in from the data before building; checked here for the rest
	}
	if err := e.Validate(); err != nil {
		return err
	}
	switch m.Head {
	case "none":
	case "mlp":
		if m.HeadDim < 1 || m.HeadHidden < 1 {
			return fmt.Errorf("model.head_dim and model.head_hidden must be >= 1 for an mlp head")
		}
	default:
		return fmt.Errorf("model.head %q: want none or mlp", m.Head)
	}
	return nil
}

// Validate checks the method section.
func (m MethodConfig) Validate() error {
	known := false
	for _, n := range Methods {
		known = known || n == m.Name
	}
	if !known {
		return fmt.Errorf("method.name %q: want one of %s", m.Name, strings.Join(Methods, ", "))
	}
	if m.Alpha < 0 || m.Alpha > 1 {
		return fmt.Errorf("method.alpha %v: must be in [0, 1]", m.Alpha)
	}
	if m.Beta < 0 || m.Gamma < 0 {
		return fmt.Errorf("method.beta and method.gamma must be >= 0")
	}
	if m.Name != "ce" {
		if !(m.Temperature > 0) {
			return fmt.Errorf("method.temperature %v: must be positive", m.Temperature)
		}
		if m.Views < 2 {
			return fmt.Errorf("method.views %d: contrastive methods need at least 2", m.Views)
		}
		if _, err := supcon.ParseDenominator(m.Denominator); err != nil {
			return fmt.Errorf("method.%w", err)
		}
		if m.Compat && m.Views != 2 {
			return fmt.Errorf("method.compat reproduces the reference code, which uses exactly 2 views")
		}
		if m.Compat && m.TwoBackbones() {
			return fmt.Errorf("method.compat: not offered for the two-backbone method %s", m.Name)
		}
	}
	return nil
}

// Normalized fills in what follows from the method: SupCon is L_spread at alpha 1, and the
// cross-entropy baseline uses one view and no decoder.
func (c Config) Normalized() Config {
	switch c.Method.Name {
	case "thanos":
		if c.Method.Beta == 0 {
			c.Method.Beta = DefaultBeta // Thanos is L_spread + autoencoder
		}
	case "thanos-2b":
		if c.Method.Beta == 0 {
			c.Method.Beta = DefaultBeta
		}
		if c.Method.Gamma == 0 {
			c.Method.Gamma = 1 // the reference trains both backbones with cross-entropy (weight 1)
		}
	case "supcon-2b":
		c.Method.Alpha, c.Method.Beta = 1, 0
		if c.Method.Gamma == 0 {
			c.Method.Gamma = 1 // the same recipe as thanos-2b, without the spread and autoencoder terms
		}
	case "supcon":
		c.Method.Alpha = 1
	case "ce":
		c.Method.Views = 1
		c.Method.Beta = 0
		if c.Method.Gamma == 0 {
			c.Method.Gamma = 1
		}
	case "simclr", "spread":
		// beta may add an autoencoder (the paper's "+ autoencoder" ablation)
	}
	return c
}

// ParseConfigYAML reads a configuration saved by Save (e.g. from a checkpoint).
func ParseConfigYAML(raw []byte) (Config, error) {
	cfg := Default()
	err := decodeStrict(raw, &cfg)
	return cfg, err
}

// writeAtomic replaces path with raw so that a crash leaves the old or the new content.
func writeAtomic(path string, raw []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { _, err := w.Write(raw); return err })
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
