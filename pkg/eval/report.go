package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spreadtrain/spreadtrain/internal/atomicfile"
	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

// Inputs are the frozen embeddings of a trained encoder. Coarse labels are required; fine labels and
// true groups are optional and switch on the sections that need them.
type Inputs struct {
	Train, Test             *torch.Tensor // [N, D] embeddings
	TrainLabels, TestLabels []int64       // coarse (training) labels
	TrainFine, TestFine     []int64       // optional fine labels (coarse-to-fine transfer)
	TrainGroups, TestGroups []int64       // optional true subgroups (worst-group robustness)
	View1, View2            *torch.Tensor // optional two augmented views of the same test samples (alignment)
	// optional validation split (the official one, or the training split's holdout): with true test
	// groups it switches on GEORGE's protocol, which selects on it by the found groups
	Val       *torch.Tensor
	ValLabels []int64
	ValGroups []int64 // optional true validation groups (reported, never used to select)
}

// Config selects and configures the sections of Evaluate. Zero values mean each part's defaults.
type Config struct {
	Probe   ProbeConfig
	KNN     KNNConfig
	Cluster ClusterConfig
	DRO     DROConfig
	Spread  SpreadConfig
	George  GeorgeConfig
	SkipDRO bool // skip the group DRO probes and GEORGE (the slowest parts)
}

// Report is everything Evaluate measured; it is written as metrics.json with these snake_case keys.
// Sections that could not be computed from the inputs are absent.
type Report struct {
	NumTrain int `json:"num_train"`
	NumTest  int `json:"num_test"`
	Dim      int `json:"dim"`
	// coarse-label probe and kNN (on the training labels)
	CoarseProbe *ProbeResult `json:"coarse_probe,omitempty"`
	CoarseKNN   *KNNResult   `json:"coarse_knn,omitempty"`
	// coarse-to-fine transfer
	FineProbe *ProbeResult `json:"fine_probe,omitempty"`
	FineKNN   *KNNResult   `json:"fine_knn,omitempty"`
	// the reference protocol: a linear probe trained through the frozen encoder on augmented images
	// (set by the caller, which owns the encoder)
	FineProbeAugmented *ProbeResult `json:"fine_probe_augmented,omitempty"`
	// per-class clusters of the training embeddings, scored against fine labels (or true groups)
	Subgroups *Subgroups `json:"subgroups,omitempty"`
	// worst-group robustness on the true test groups
	ERM           *ProbeResult  `json:"erm,omitempty"`                   // the coarse probe seen by true group
	DRODiscovered *DROResult    `json:"group_dro_discovered,omitempty"`  // DRO over (class, cluster) groups
	DROTrueGroups *DROResult    `json:"group_dro_true_groups,omitempty"` // DRO over the true training groups
	George        *GeorgeResult `json:"george,omitempty"`                // DRO over found groups, selected on validation
	// GEORGE's full-network variant: encoder and head trained with DRO over the found groups, the
	// epoch selected on validation (pkg/train; eval --george-full-epochs)
	GeorgeFull      *DROResult         `json:"george_full_network,omitempty"`
	Spread          *Spread            `json:"spread,omitempty"`
	Timings         map[string]float64 `json:"timings_s"`
	LibtorchVersion string             `json:"libtorch_version"`
}

// Evaluate runs every protocol the inputs allow: coarse probe and kNN; fine probe and kNN when fine
// labels are given; subgroup discovery on the training embeddings (scored against the fine labels,
// or the true groups when there are no fine labels); group DRO over the discovered groups and over
// the true groups when true groups are given; spread diagnostics on the test embeddings.
func Evaluate(in Inputs, cfg Config) (*Report, error) {
	r := &Report{Timings: map[string]float64{}, LibtorchVersion: torch.Version()}
	err := guard("evaluate", func() error {
		ntr, d, err := checkData("train", Data{X: in.Train, Labels: in.TrainLabels, Groups: in.TrainGroups})
		if err != nil {
			return err
		}
		nte, _, err := checkData("test", Data{X: in.Test, Labels: in.TestLabels, Groups: in.TestGroups})
		if err != nil {
			return err
		}
		if (in.TrainFine == nil) != (in.TestFine == nil) {
			return fmt.Errorf("fine labels: give them for both train and test, or for neither")
		}
		if (in.TrainGroups == nil) != (in.TestGroups == nil) {
			return fmt.Errorf("groups: give them for both train and test, or for neither")
		}
		r.NumTrain, r.NumTest, r.Dim = int(ntr), int(nte), int(d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	timed := func(name string, f func() error) error {
		t0 := time.Now()
		err := f()
		r.Timings[name] = time.Since(t0).Seconds()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	train := Data{X: in.Train, Labels: in.TrainLabels, Groups: in.TrainGroups}
	test := Data{X: in.Test, Labels: in.TestLabels, Groups: in.TestGroups}
	steps := []struct {
		name string
		on   bool
		f    func() error
	}{
		{"coarse_probe", true, func() (err error) { r.CoarseProbe, err = LinearProbe(train, test, cfg.Probe); return }},
		{"coarse_knn", true, func() (err error) { r.CoarseKNN, err = KNN(train, test, cfg.KNN); return }},
		{"fine_probe", in.TrainFine != nil, func() (err error) {
			r.FineProbe, err = LinearProbe(Data{X: in.Train, Labels: in.TrainFine}, Data{X: in.Test, Labels: in.TestFine, Groups: in.TestGroups}, cfg.Probe)
			return
		}},
		{"fine_knn", in.TrainFine != nil, func() (err error) {
			r.FineKNN, err = KNN(Data{X: in.Train, Labels: in.TrainFine}, Data{X: in.Test, Labels: in.TestFine}, cfg.KNN)
			return
		}},
		{"subgroups", true, func() error {
			s, err := DiscoverSubgroups(train, cfg.Cluster)
			if err != nil {
				return err
			}
			r.Subgroups = s
			// the clusters are meant to find the hidden groups: score them against the true groups
			// where the data has them, and against the fine labels as well where it has both
			switch {
			case in.TrainGroups != nil:
				s.Reference = "groups"
				if err := s.Score(in.TrainGroups); err != nil {
					return err
				}
				if in.TrainFine != nil {
					s.VsFine, err = s.Against(in.TrainFine, "fine")
				}
				return err
			case in.TrainFine != nil:
				s.Reference = "fine"
				return s.Score(in.TrainFine)
			}
			return nil
		}},
		{"group_dro_discovered", !cfg.SkipDRO && in.TestGroups != nil, func() (err error) {
			if r.CoarseProbe != nil {
				r.ERM = r.CoarseProbe
			}
			tr := train
			tr.Groups = r.Subgroups.Assign
			r.DRODiscovered, err = GroupDRO(tr, test, cfg.DRO)
			return
		}},
		{"group_dro_true_groups", !cfg.SkipDRO && in.TestGroups != nil, func() (err error) {
			r.DROTrueGroups, err = GroupDRO(train, test, cfg.DRO)
			return
		}},
		{"george", !cfg.SkipDRO && in.TestGroups != nil && in.Val != nil, func() error {
			val := Data{X: in.Val, Labels: in.ValLabels}
			found, err := r.Subgroups.AssignRows(val)
			if err != nil {
				return err
			}
			val.Groups = found
			tr := train
			tr.Groups = r.Subgroups.Assign
			r.George, err = George(tr, val, test, in.ValGroups, cfg.George)
			return err
		}},
		{"spread", true, func() (err error) {
			r.Spread, err = SpreadDiagnostics(SpreadInput{X: in.Test, Labels: in.TestLabels, View1: in.View1, View2: in.View2}, cfg.Spread)
			return
		}},
	}
	for _, s := range steps {
		if !s.on {
			continue
		}
		if err := timed(s.name, s.f); err != nil {
			return r, err
		}
	}
	return r, nil
}

// JSON is the report as indented JSON (stable key order: struct order, maps sorted).
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("eval: report to JSON: %w", err)
	}
	return append(b, '\n'), nil
}

// WriteJSON writes the report to path (e.g. run/metrics.json) atomically.
func (r *Report) WriteJSON(path string) error {
	b, err := r.JSON()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return fmt.Errorf("eval: write %s: %w", path, err)
	}
	return nil
}

func pct(v float64) string { return fmt.Sprintf("%.2f", 100*v) }

func optPct(v *float64) string {
	if v == nil {
		return "–"
	}
	return pct(*v)
}

// refName names a cluster score's reference labelling in prose.
func refName(r string) string {
	switch r {
	case "groups":
		return "true groups"
	case "fine":
		return "fine labels"
	}
	return "reference labels"
}

func optF(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.4f", *v)
}

// Markdown renders the report as Markdown tables (accuracies in percent).
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Evaluation\n\n%d train / %d test embeddings of dimension %d.\n\n", r.NumTrain, r.NumTest, r.Dim)
	if r.CoarseProbe != nil || r.FineProbe != nil || r.CoarseKNN != nil || r.FineKNN != nil {
		b.WriteString("## Accuracy\n\n| protocol | labels | train % | test % | worst group % | notes |\n|---|---|---:|---:|---:|---|\n")
		probe := func(name string, p *ProbeResult) {
			if p != nil {
				fmt.Fprintf(&b, "| linear probe | %s | %s | %s | %s | %d classes, λ=%g, %d L-BFGS iterations |\n",
					name, pct(p.TrainAcc), pct(p.TestAcc), optPct(p.WorstGroupAcc), p.NumClasses, p.WeightDecay, p.Iterations)
			}
		}
		knn := func(name string, k *KNNResult) {
			if k != nil {
				fmt.Fprintf(&b, "| kNN | %s | – | %s | – | k=%d, T=%g |\n", name, pct(k.Accuracy), k.K, k.Temperature)
			}
		}
		probe("coarse", r.CoarseProbe)
		knn("coarse", r.CoarseKNN)
		probe("fine", r.FineProbe)
		knn("fine", r.FineKNN)
		if p := r.FineProbeAugmented; p != nil {
			fmt.Fprintf(&b, "| linear probe, augmented (reference protocol) | fine | %s | %s | – | %d classes, %d epochs |\n",
				pct(p.TrainAcc), pct(p.TestAcc), p.NumClasses, p.Iterations)
		}
		b.WriteString("\n")
	}
	if r.Spread != nil {
		s := r.Spread
		fmt.Fprintf(&b, "## Spread\n\n| intra-class cos | inter-class cos | alignment (α=%g) | uniformity (t=%g) |\n|---:|---:|---:|---:|\n| %.4f | %.4f | %s | %.4f |\n\n",
			s.AlignAlpha, s.UniformityT, s.IntraClassCosine, s.InterClassCosine, optF(s.Alignment), s.Uniformity)
	}
	if sg := r.Subgroups; sg != nil {
		fmt.Fprintf(&b, "## Subgroups (%s per class)\n\n", sg.Method)
		if sg.ARI != nil {
			for _, sc := range []*ClusterScore{&sg.ClusterScore, sg.VsFine} {
				if sc == nil {
					continue
				}
				fmt.Fprintf(&b, "Against the %s: ARI %.4f, NMI %.4f over all (class, cluster) groups; per-class ARI %.4f, NMI %.4f; subgroup identification accuracy %s %%.\n\n",
					refName(sc.Reference), *sc.ARI, *sc.NMI, *sc.PerClassARI, *sc.PerClassNMI, optPct(sc.SubgroupAcc))
			}
		}
		b.WriteString("| class | n | k | silhouette | sizes | ARI | NMI |\n|---:|---:|---:|---:|---|---:|---:|\n")
		for _, c := range sg.Classes {
			sizes := make([]string, len(c.Sizes))
			for i, s := range c.Sizes {
				sizes[i] = fmt.Sprint(s)
			}
			fmt.Fprintf(&b, "| %d | %d | %d | %.4f | %s | %s | %s |\n", c.Class, c.N, c.K, c.Silhouette,
				strings.Join(sizes, ", "), optF(c.ARI), optF(c.NMI))
		}
		b.WriteString("\n")
	}
	if r.DRODiscovered != nil || r.DROTrueGroups != nil || r.George != nil || r.GeorgeFull != nil {
		b.WriteString("## Worst-group robustness (true test groups)\n\n")
		type col struct {
			name string
			per  []GroupAcc
			avg  float64
			wg   float64
		}
		var cols []col
		if r.ERM != nil && r.ERM.WorstGroupAcc != nil {
			cols = append(cols, col{"ERM probe", r.ERM.PerGroup, r.ERM.TestAcc, *r.ERM.WorstGroupAcc})
		}
		if d := r.DRODiscovered; d != nil {
			cols = append(cols, col{fmt.Sprintf("DRO, %d found groups", d.NumTrainGroup), d.PerGroup, d.TestAcc, d.WorstGroupAcc})
		}
		if d := r.DROTrueGroups; d != nil {
			cols = append(cols, col{"DRO, true groups", d.PerGroup, d.TestAcc, d.WorstGroupAcc})
		}
		if g := r.George; g != nil {
			d := g.Selected
			cols = append(cols, col{fmt.Sprintf("GEORGE (η=%g, C=%g, step %d)", d.Eta, d.Adjustment, d.SelectedStep), d.PerGroup, d.TestAcc, d.WorstGroupAcc})
		}
		if d := r.GeorgeFull; d != nil {
			cols = append(cols, col{fmt.Sprintf("GEORGE full network (epoch %d)", d.SelectedStep), d.PerGroup, d.TestAcc, d.WorstGroupAcc})
		}
		ids := map[int64]bool{}
		for _, c := range cols {
			for _, g := range c.per {
				ids[g.ID] = true
			}
		}
		var order []int64
		for id := range ids {
			order = append(order, id)
		}
		sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
		b.WriteString("| group |")
		sep := "|---:|"
		for _, c := range cols {
			b.WriteString(" " + c.name + " % |")
			sep += "---:|"
		}
		b.WriteString("\n" + sep + "\n")
		for _, id := range order {
			fmt.Fprintf(&b, "| %d |", id)
			for _, c := range cols {
				cell := "–"
				for _, g := range c.per {
					if g.ID == id {
						cell = fmt.Sprintf("%s (n=%d)", pct(g.Accuracy), g.N)
					}
				}
				b.WriteString(" " + cell + " |")
			}
			b.WriteString("\n")
		}
		for _, row := range []struct {
			name string
			f    func(col) float64
		}{{"**average**", func(c col) float64 { return c.avg }}, {"**worst**", func(c col) float64 { return c.wg }}} {
			b.WriteString("| " + row.name + " |")
			for _, c := range cols {
				b.WriteString(" **" + pct(row.f(c)) + "** |")
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if g := r.George; g != nil {
		fmt.Fprintf(&b, "GEORGE: group DRO over %d found groups, %d settings (η, C, weight decay), each at the step with the best worst found-group accuracy on validation; the selected one reached %s %% there",
			g.NumFoundGroups, len(g.Grid), pct(*g.Selected.ValWorstGroupAcc))
		if g.ValWorstTrueGroupAcc != nil {
			fmt.Fprintf(&b, " (%s %% on the worst true validation group, not used to select)", pct(*g.ValWorstTrueGroupAcc))
		}
		b.WriteString(".\n\n")
	}
	if d := r.GeorgeFull; d != nil {
		fmt.Fprintf(&b, "GEORGE, full network: encoder and head trained with group DRO over %d found groups (η=%g, C=%g), epoch %d selected by its worst found-group accuracy on validation (%s %%).\n\n",
			d.NumTrainGroup, d.Eta, d.Adjustment, d.SelectedStep, pct(*d.ValWorstGroupAcc))
	}
	if len(r.Timings) > 0 {
		keys := make([]string, 0, len(r.Timings))
		for k := range r.Timings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("## Timings\n\n| step | seconds |\n|---|---:|\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "| %s | %.2f |\n", k, r.Timings[k])
		}
	}
	return b.String()
}
