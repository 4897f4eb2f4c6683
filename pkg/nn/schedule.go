package nn

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate of every optimizer step.
type Schedule struct {
	Kind        string  `yaml:"kind"`         // cosine, step or constant
	WarmupSteps int     `yaml:"warmup_steps"` // linear warm-up from 0 (cosine and step)
	MinLR       float64 `yaml:"min_lr"`       // cosine floor
	StepEvery   int     `yaml:"step_every"`   // step: decay every this many steps
	Gamma       float64 `yaml:"gamma"`        // step: decay factor
}

// Validate checks the schedule for a run of totalSteps optimizer steps.
func (s Schedule) Validate(totalSteps int) error {
	switch s.Kind {
	case "cosine", "constant":
	case "step":
		if s.StepEvery <= 0 {
			return fmt.Errorf("schedule.step_every %d: must be positive for a step schedule", s.StepEvery)
		}
		if !(s.Gamma > 0 && s.Gamma <= 1) {
			return fmt.Errorf("schedule.gamma %v: must be in (0, 1]", s.Gamma)
		}
	default:
		return fmt.Errorf("schedule.kind %q: want cosine, step or constant", s.Kind)
	}
	if s.WarmupSteps < 0 || (totalSteps > 0 && s.WarmupSteps > totalSteps) {
		return fmt.Errorf("schedule.warmup_steps %d: must be in [0, %d]", s.WarmupSteps, totalSteps)
	}
	if s.MinLR < 0 {
		return fmt.Errorf("schedule.min_lr %v: must be >= 0", s.MinLR)
	}
	return nil
}

// LR is the learning rate at 0-based step of totalSteps, for base rate base.
func (s Schedule) LR(base float64, step, totalSteps int) float64 {
	if s.Kind == "constant" {
		return base
	}
	if step < s.WarmupSteps {
		return base * float64(step+1) / float64(s.WarmupSteps)
	}
	switch s.Kind {
	case "step":
		return base * math.Pow(s.Gamma, float64((step-s.WarmupSteps)/s.StepEvery))
	default: // cosine
		span := totalSteps - s.WarmupSteps
		if span <= 0 {
			return base
		}
		frac := math.Min(1, float64(step-s.WarmupSteps)/float64(span))
		return s.MinLR + 0.5*(base-s.MinLR)*(1+math.Cos(math.Pi*frac))
	}
}
