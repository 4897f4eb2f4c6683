package train

import (
	"encoding/json"
	"fmt"

	"github.com/spreadtrain/spreadtrain/pkg/data"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// pipeline turns the training set into augmented multi-view batches on the device.
type pipeline struct {
	loader *data.Loader
	aug    *data.Augmenter
	views  int
}

// resolveAugment fills in the normalisation when the configuration leaves it out (data.NormalizationOf).
func resolveAugment(cfg Config, d *data.Dataset) data.AugmentConfig {
	a := cfg.Augment
	if len(a.Mean) == 0 {
		a.Mean, a.Std = data.NormalizationOf(cfg.Data.Name, d)
	}
	return a
}

func newPipeline(cfg Config, d *data.Dataset, dev torch.Device, rank, world int) (*pipeline, error) {
	aug, err := data.NewAugmenter(cfg.Augment, cfg.Data.Name, d.C, d.H, d.W)
	if err != nil {
		return nil, err
	}
	perRank := cfg.Train.BatchSize / max(world, 1)
	if perRank*max(world, 1) != cfg.Train.BatchSize {
		return nil, fmt.Errorf("train.batch_size %d is not divisible by the %d processes", cfg.Train.BatchSize, world)
	}
	loader, err := data.NewLoader(d, dev, data.LoaderOptions{SamplerOptions: data.SamplerOptions{
		BatchSize: perRank, DropLast: true, Seed: cfg.Train.Seed, Rank: rank, World: world}, Stream: cfg.Train.StreamData})
	if err != nil {
		return nil, err
	}
	if loader.StepsPerEpoch() == 0 {
		loader.Close()
		return nil, fmt.Errorf("train.batch_size %d is larger than the %d training images (per process); lower it", cfg.Train.BatchSize, d.N)
	}
	return &pipeline{loader: loader, aug: aug, views: cfg.Method.Views}, nil
}

// next returns the next step's input, or ok = false at the end of an epoch (the following call
// starts the next one).
func (p *pipeline) next() (stepInput, bool, error) {
	b, ok, err := p.loader.Next()
	if err != nil || !ok {
		return stepInput{}, false, err
	}
	views, err := p.aug.Views(b.Images, p.views)
	if err != nil {
		return stepInput{}, false, fmt.Errorf("augment: %w", err)
	}
	return stepInput{views: views, coarse: b.Coarse}, true, nil
}

func (p *pipeline) stepsPerEpoch() int { return p.loader.StepsPerEpoch() }
func (p *pipeline) position() int      { return p.loader.Position() }

func (p *pipeline) state() []byte {
	raw, _ := json.Marshal(p.loader.State())
	return raw
}

func (p *pipeline) setState(st data.SamplerState) error { return p.loader.Restore(st) }

func (p *pipeline) free() { p.loader.Close() }
