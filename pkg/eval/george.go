package eval

import (
	"fmt"
	"time"
)

// GeorgeConfig configures the robustness protocol of GEORGE (Sohoni et al. 2020) on frozen features:
// the classes' clusters (DiscoverSubgroups) are the groups of a group DRO linear head; every setting
// of the grid trains one head, scored on the validation split by its worst found-group accuracy (the
// true groups stay unseen until the test split); the best head is reported on the true test groups.
// The grid is every combination of Etas, Adjustments and WeightDecays over the DRO settings.
type GeorgeConfig struct {
	DRO          DROConfig // steps, learning rate, batch, seed, select-every
	Etas         []float64 // group-weight step sizes; default 0.01, 0.1
	Adjustments  []float64 // group adjustments C; default 0, 2
	WeightDecays []float64 // default 1e-4
}

func (c *GeorgeConfig) defaults() {
	if len(c.Etas) == 0 {
		c.Etas = []float64{0.01, 0.1}
	}
	if len(c.Adjustments) == 0 {
		c.Adjustments = []float64{0, 2}
	}
	if len(c.WeightDecays) == 0 {
		c.WeightDecays = []float64{1e-4}
	}
}

// GeorgeTrial is one setting of the grid, at the step selected on validation.
type GeorgeTrial struct {
	Eta                   float64 `json:"eta"`
	Adjustment            float64 `json:"adjustment"`
	WeightDecay           float64 `json:"weight_decay"`
	SelectedStep          int     `json:"selected_step"`
	ValWorstFoundGroupAcc float64 `json:"val_worst_found_group_acc"`
}

// GeorgeResult is the selected head's accuracy on the true test groups (Selected.PerGroup,
// Selected.WorstGroupAcc) with the grid that led to it.
type GeorgeResult struct {
	NumFoundGroups int           `json:"num_found_groups"`
	Selected       *DROResult    `json:"selected"`
	Grid           []GeorgeTrial `json:"grid"`
	// ValWorstTrueGroupAcc is the selected head's worst true-group accuracy on validation, where the
	// validation rows have true groups (reported, never used to select).
	ValWorstTrueGroupAcc *float64 `json:"val_worst_true_group_acc,omitempty"`
	Seconds              float64  `json:"seconds"`
}

// George runs the protocol: train.Groups and val.Groups are the found groups of the training and
// validation rows (Subgroups.Assign, Subgroups.AssignRows), test.Groups the true test groups, and
// valTrue the true validation groups (nil when unknown; only reported).
func George(train, val, test Data, valTrue []int64, cfg GeorgeConfig) (*GeorgeResult, error) {
	start := time.Now()
	cfg.defaults()
	if valTrue != nil && len(valTrue) != len(val.Labels) {
		return nil, fmt.Errorf("eval: george: %d true validation groups for %d validation rows", len(valTrue), len(val.Labels))
	}
	res := &GeorgeResult{NumFoundGroups: distinct(train.Groups)}
	for _, eta := range cfg.Etas {
		for _, adj := range cfg.Adjustments {
			for _, wd := range cfg.WeightDecays {
				dc := cfg.DRO
				dc.Eta, dc.Adjustment, dc.WeightDecay = eta, adj, wd
				r, err := GroupDROSelect(train, val, test, dc)
				if err != nil {
					return nil, fmt.Errorf("george (eta %g, adjustment %g, weight decay %g): %w", eta, adj, wd, err)
				}
				res.Grid = append(res.Grid, GeorgeTrial{Eta: eta, Adjustment: adj, WeightDecay: wd,
					SelectedStep: r.SelectedStep, ValWorstFoundGroupAcc: *r.ValWorstGroupAcc})
				if res.Selected == nil || *r.ValWorstGroupAcc > *res.Selected.ValWorstGroupAcc {
					res.Selected = r
				}
			}
		}
	}
	if valTrue != nil {
		w := worst(accuracyBy(valTrue, res.Selected.ValPredictions, val.Labels))
		res.ValWorstTrueGroupAcc = &w
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
