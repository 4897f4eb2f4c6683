package tfevents

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// event is one record as testdata/read_events.py decodes it.
type event struct {
	WallTime    float64              `json:"wall_time"`
	Step        int64                `json:"step"`
	What        string               `json:"what"`
	FileVersion string               `json:"file_version"`
	Values      [][2]json.RawMessage `json:"values"`
}

// readEvents decodes an event file with the independent Python reader (its own CRC-32C, Python's
// protobuf library) and returns the events and the file as that library re-encodes it.
func readEvents(t *testing.T, path string) ([]event, []byte) {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import google.protobuf").CombinedOutput(); err != nil {
		t.Skipf("SKIPPING the check against an independent protobuf implementation: %s cannot import google.protobuf (apt-get install -y python3-protobuf; scripts/setup.sh --test does): %v %s", py, err, out)
	}
	re := filepath.Join(t.TempDir(), "reencoded")
	cmd := exec.Command(py, "testdata/read_events.py", path, re)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read_events.py %s: %v\n%s", path, err, stderr.String())
	}
	var evs []event
	if err := json.Unmarshal(out, &evs); err != nil {
		t.Fatalf("read_events.py output: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(re)
	if err != nil {
		t.Fatal(err)
	}
	return evs, raw
}

func scalarsOf(t *testing.T, e event) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, v := range e.Values {
		var tag string
		var val float64
		if err := json.Unmarshal(v[0], &tag); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(v[1], &val); err != nil {
			t.Fatal(err)
		}
		m[tag] = val
	}
	return m
}

// The file's bytes are exactly what Python's protobuf library and a table CRC-32C produce for the
// same events, and they decode to the values written (as float32, TensorBoard's scalar type).
func TestEventsMatchIndependentEncoder(t *testing.T) {
	dir := t.TempDir()
	start := time.Unix(1764547200, 250_000_000)
	w, err := Create(dir, start)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if want := filepath.Join(dir, "events.out.tfevents.1764547200."+host); w.Path() != want {
		t.Fatalf("file %s, want %s", w.Path(), want)
	}
	steps := []struct {
		step   int64
		values map[string]float64
	}{
		{0, map[string]float64{"loss": 0}}, // step 0 and value 0: proto3 leaves out the step, the oneof keeps the value
		{10, map[string]float64{"loss": 4.125, "supcon": 0.1, "lr": 3e-4, "images_per_s": 1234.5}},
		{1 << 40, map[string]float64{"val_coarse_knn_acc": -2.5e-38, "ünïcode/tag": 1e30}},
		{11, map[string]float64{}},
	}
	for i, s := range steps {
		if err := w.Scalars(s.step, start.Add(time.Duration(i+1)*time.Second), s.values); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	evs, reencoded := readEvents(t, w.Path())
	if !bytes.Equal(raw, reencoded) {
		t.Fatalf("our %d bytes differ from the independent encoding's %d:\nours   %x\ntheirs %x", len(raw), len(reencoded), raw, reencoded)
	}
	if len(evs) != 1+len(steps) {
		t.Fatalf("%d events, want %d", len(evs), 1+len(steps))
	}
	if e := evs[0]; e.What != "file_version" || e.FileVersion != "brain.Event:2" || e.WallTime != 1764547200.25 || e.Step != 0 {
		t.Fatalf("first event %+v, want file_version brain.Event:2 at 1764547200.25", e)
	}
	for i, s := range steps {
		e := evs[i+1]
		if e.What != "summary" || e.Step != s.step || e.WallTime != 1764547200.25+float64(i+1) {
			t.Fatalf("event %d: %+v, want a summary of step %d", i+1, e, s.step)
		}
		got := scalarsOf(t, e)
		if len(got) != len(s.values) {
			t.Fatalf("event %d: %v, want %v", i+1, got, s.values)
		}
		for k, v := range s.values {
			if want := float64(float32(v)); got[k] != want {
				t.Errorf("event %d: %s = %v, want %v", i+1, k, got[k], want)
			}
		}
	}
}

// Framing of a known payload: the CRC-32C check value of "123456789" is 0xE3069283 (RFC 3720,
// B.4), masked as TFRecord specifies ((c >> 15 | c << 17) + 0xa282ead8); the length 9 is 8 bytes LE.
func TestRecordFraming(t *testing.T) {
	c := uint32(0xE3069283)
	want := (c>>15 | c<<17) + 0xa282ead8
	rec := Record([]byte("123456789"))
	if len(rec) != 8+4+9+4 || !bytes.Equal(rec[:8], []byte{9, 0, 0, 0, 0, 0, 0, 0}) || string(rec[12:21]) != "123456789" {
		t.Fatalf("record %x", rec)
	}
	if got := uint32(rec[21]) | uint32(rec[22])<<8 | uint32(rec[23])<<16 | uint32(rec[24])<<24; got != want {
		t.Fatalf("data CRC %#x, want %#x", got, want)
	}
}

// A second writer in the same second (a resume right after a crash) gets its own file: event files
// are appended to by one invocation only.
func TestCreateNeverReusesAFile(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1764547200, 0)
	a, err := Create(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Create(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Path() == b.Path() || !strings.HasPrefix(filepath.Base(b.Path()), filepath.Base(a.Path())+".") {
		t.Fatalf("second file %s next to %s", b.Path(), a.Path())
	}
	if _, err := Create(filepath.Join(dir, "missing"), now); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("err = %v, want one naming the folder", err)
	}
}
