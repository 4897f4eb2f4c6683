package eval

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/spreadtrain/spreadtrain/pkg/torch"
)

func TestEvaluateReport(t *testing.T) {
	x, coarse, fine := subclassData(5)
	xt, ct, ft := subclassData(6)
	// true groups = fine labels here; views: the test set and a slightly perturbed copy
	v2 := xt.Add(torch.Randn(xt.Shape(), torch.Float32, torch.CPU).MulScalar(0.1))
	in := Inputs{Train: x, Test: xt, TrainLabels: coarse, TestLabels: ct, TrainFine: fine, TestFine: ft,
		TrainGroups: fine, TestGroups: ft, View1: xt, View2: v2}
	r, err := Evaluate(in, Config{Cluster: ClusterConfig{KMax: 5, Seed: 1}, DRO: DROConfig{Steps: 300}, KNN: KNNConfig{K: 20}})
	if err != nil {
		t.Fatal(err)
	}
	if r.FineProbe.TestAcc < 0.95 || r.CoarseProbe.TestAcc < 0.95 || *r.Subgroups.PerClassARI < 0.95 {
		t.Errorf("fine %.3f coarse %.3f per-class ARI %.3f", r.FineProbe.TestAcc, r.CoarseProbe.TestAcc, *r.Subgroups.PerClassARI)
	}
	if r.Spread.Alignment == nil || r.DROTrueGroups == nil || r.DRODiscovered == nil || r.ERM == nil {
		t.Fatal("sections missing")
	}
	dir := t.TempDir()
	if d := os.Getenv("PLOT_OUT"); d != "" {
		dir = d
	}
	p := filepath.Join(dir, "metrics.json")
	if err := r.WriteJSON(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"coarse_knn", "coarse_probe", "dim", "erm", "fine_knn", "fine_probe", "group_dro_discovered",
		"group_dro_true_groups", "libtorch_version", "num_test", "num_train", "spread", "subgroups", "timings_s"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("top-level keys %v, want %v", keys, want)
	}
	for _, k := range []string{`"test_acc"`, `"per_class"`, `"worst_group_acc"`, `"intra_class_cosine"`, `"uniformity"`,
		`"alignment"`, `"per_class_ari"`, `"silhouette"`, `"group_weights"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("metrics.json lacks %s", k)
		}
	}
	md := r.Markdown()
	for _, s := range []string{"## Accuracy", "| linear probe | fine |", "## Spread", "## Subgroups", "**worst**", "DRO, true groups"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
	if os.Getenv("PLOT_OUT") != "" {
		os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644)
	}
	if err := EmbeddingPlot(filepath.Join(dir, "embedding_fine.png"), "subclass data", x, fine, nil, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := EmbeddingPlot(filepath.Join(dir, "e.png"), "", x, fine[:3], nil, 0, 1); err == nil {
		t.Error("short labels accepted")
	}
	// bad inputs to Evaluate
	bad := in
	bad.TestFine = nil
	if _, err := Evaluate(bad, Config{}); err == nil || !strings.Contains(err.Error(), "fine labels") {
		t.Errorf("one-sided fine labels: %v", err)
	}
}
