package eval

import (
	"encoding/json"
	"fmt"
	"os"
)

// Headline is one headline number of a Report: the columns of `spreadtrain compare` and of
// experiments/summarize's tables.
type Headline struct {
	Name    string
	Percent bool // an accuracy, shown in percent; else a score shown as is
	// Of returns the number, or nil when the report lacks it (no fine labels, no groups, ...).
	Of func(*Report) *float64
}

// Headlines are the numbers a comparison of runs shows, in column order. It is the one metric
// extractor: every table of evaluated runs goes through it.
var Headlines = []Headline{
	{"coarse probe", true, func(r *Report) *float64 { return probeAcc(r.CoarseProbe) }},
	{"fine probe", true, func(r *Report) *float64 { return probeAcc(r.FineProbe) }},
	{"fine kNN", true, func(r *Report) *float64 {
		if r.FineKNN == nil {
			return nil
		}
		return &r.FineKNN.Accuracy
	}},
	{"intra-class cos", false, func(r *Report) *float64 {
		if r.Spread == nil {
			return nil
		}
		return &r.Spread.IntraClassCosine
	}},
	{"worst group ERM", true, func(r *Report) *float64 {
		if r.ERM == nil {
			return nil
		}
		return r.ERM.WorstGroupAcc
	}},
	{"worst group DRO (found)", true, func(r *Report) *float64 {
		if r.DRODiscovered == nil {
			return nil
		}
		return &r.DRODiscovered.WorstGroupAcc
	}},
	{"worst group DRO (true)", true, func(r *Report) *float64 {
		if r.DROTrueGroups == nil {
			return nil
		}
		return &r.DROTrueGroups.WorstGroupAcc
	}},
	{"cluster ARI", false, func(r *Report) *float64 {
		if r.Subgroups == nil {
			return nil
		}
		return r.Subgroups.PerClassARI
	}},
}

func probeAcc(p *ProbeResult) *float64 {
	if p == nil {
		return nil
	}
	return &p.TestAcc
}

// ReadReport reads a report written by WriteJSON (a run's metrics.json).
func ReadReport(path string) (*Report, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}
