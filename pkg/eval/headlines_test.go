package eval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Headlines read each number from its field of a metrics.json written by hand (not by WriteJSON),
// and report nil for what a run lacks.
func TestHeadlinesFromMetricsJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.json")
	raw := `{"num_train": 10, "coarse_probe": {"test_acc": 0.91}, "fine_knn": {"accuracy": 0.5},
		"spread": {"intra_class_cosine": 0.25}, "erm": {"test_acc": 0.8, "worst_group_acc": 0.125},
		"group_dro_true_groups": {"worst_group_acc": 0.75}, "subgroups": {"per_class_ari": 0.0625}}`
	if err := os.WriteFile(path, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"coarse probe": 0.91, "fine kNN": 0.5, "intra-class cos": 0.25, "worst group ERM": 0.125,
		"worst group DRO (true)": 0.75, "cluster ARI": 0.0625}
	for _, h := range Headlines {
		v := h.Of(r)
		w, ok := want[h.Name]
		switch {
		case !ok && v != nil:
			t.Errorf("%s = %v, want absent", h.Name, *v)
		case ok && (v == nil || *v != w):
			t.Errorf("%s = %v, want %v", h.Name, v, w)
		}
		if h.Percent == (h.Name == "intra-class cos" || h.Name == "cluster ARI") {
			t.Errorf("%s: Percent = %v", h.Name, h.Percent)
		}
	}
	os.WriteFile(path, []byte("{"), 0o644)
	if _, err := ReadReport(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a torn metrics.json: %v, want an error naming the file", err)
	}
}
