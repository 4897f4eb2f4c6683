package train

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// checkEventsMatchMetrics reads the run's TensorBoard event files (one per invocation, read in name
// order, a later file's value for a step and tag replacing an earlier one's, as TensorBoard does on
// a restart) with pkg/tfevents' independent Python reader, and checks that they hold exactly the
// values of metrics.jsonl, as float32.
func checkEventsMatchMetrics(t *testing.T, runDir string, wantFiles int) {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import google.protobuf").CombinedOutput(); err != nil {
		t.Skipf("SKIPPING the TensorBoard event check: %s cannot import google.protobuf (apt-get install -y python3-protobuf; scripts/setup.sh --test does): %v %s", py, err, out)
	}
	files, _ := filepath.Glob(filepath.Join(runDir, "events.out.tfevents.*"))
	sort.Strings(files)
	if len(files) != wantFiles {
		t.Fatalf("%s holds %d event files %v, want %d (one per invocation)", runDir, len(files), files, wantFiles)
	}
	type key struct {
		step int
		tag  string
	}
	got := map[key]float64{}
	for _, f := range files {
		cmd := exec.Command(py, filepath.Join("..", "tfevents", "testdata", "read_events.py"), f, filepath.Join(t.TempDir(), "reencoded"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("read_events.py %s: %v\n%s", f, err, stderr.String())
		}
		var evs []struct {
			Step         int
			What         string
			File_version string
			Values       [][2]json.RawMessage
		}
		if err := json.Unmarshal(out, &evs); err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 || evs[0].File_version != "brain.Event:2" {
			t.Fatalf("%s does not start with the file_version event", f)
		}
		for _, e := range evs[1:] {
			for _, v := range e.Values {
				var tag string
				var val float64
				json.Unmarshal(v[0], &tag)
				json.Unmarshal(v[1], &val)
				got[key{e.Step, tag}] = val
			}
		}
	}
	recs, err := ReadMetrics(runDir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[key]float64{}
	for _, r := range recs {
		for tag, v := range r.Values {
			want[key{r.Step, tag}] = float64(float32(v))
		}
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("the event files hold %d (step, tag) values, metrics.jsonl %d", len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("step %d %s: event %v (present %v), metrics.jsonl %v", k.step, k.tag, g, ok, v)
		}
	}
}
