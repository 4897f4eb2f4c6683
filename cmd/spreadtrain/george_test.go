package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeWaterbirds writes a small dataset in Waterbirds' released layout (metadata.csv with
// img_id,img_filename,y,split,place,place_filename; JPEGs under species folders). The bird (y) is a
// bright bar, vertical for waterbirds and horizontal for landbirds; the place is the background's
// colour. In train the place agrees with y on a share `agree` of the rows, in val and test on half.
func writeWaterbirds(t *testing.T, dir string, perSplit [3]int, agree float64) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	var meta strings.Builder
	meta.WriteString("img_id,img_filename,y,split,place,place_filename\n")
	id := 0
	for split, n := range perSplit {
		for i := 0; i < n; i++ {
			y, p := i%2, i%2
			if split == 0 && rng.Float64() >= agree {
				p = 1 - y
			}
			if split > 0 && (i/2)%2 == 1 { // val and test: each class on each place, half and half
				p = 1 - y
			}
			img := image.NewRGBA(image.Rect(0, 0, 16, 16))
			bg := color.RGBA{uint8(40 + 160*p), 90, uint8(200 - 160*p), 255}
			at := 3 + rng.Intn(10)
			for r := 0; r < 16; r++ {
				for c := 0; c < 16; c++ {
					px := bg
					if (y == 1 && c >= at && c < at+3) || (y == 0 && r >= at && r < at+3) {
						px = color.RGBA{240, 240, 240, 255}
					}
					px.G += uint8(rng.Intn(20))
					img.Set(c, r, px)
				}
			}
			id++
			name := fmt.Sprintf("%03d.Species_%d/Species_%d_%04d.jpg", 1+100*y, y, y, id)
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&meta, "%d,%s,%d,%d,%d,/b/place_%d/%08d.jpg\n", id, name, y, split, p, p, id)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "metadata.csv"), []byte(meta.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// eval --george-full-epochs on a Waterbirds-format folder: the full-network variant runs after the
// frozen-feature protocol, writes george_full_network into metrics.json and a column of report.md,
// and its numbers are consistent with its own per-group counts; --on val leaves it out with a warning.
func TestCLIGeorgeFullNetwork(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "waterbirds")
	writeWaterbirds(t, dataDir, [3]int{96, 40, 40}, 0.9)
	cfg := filepath.Join(dir, "wb.yaml")
	os.WriteFile(cfg, []byte(`data: {name: waterbirds, image_size: 16, channels: 3}
model: {arch: resnet18, stem: cifar, width: 0.0625}
decoder: {width: 0.0625}
augment: {color_jitter: {p: 0}, grayscale: 0}
train: {epochs: 1, batch_size: 32, device: cpu, knn: 10}
`), 0o644)
	runDir := filepath.Join(dir, "run")
	if code, _, stderr := runCLI(t, "train", "--config", cfg, "--data-dir", dataDir, "--out", runDir); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, stderr)
	}
	const epochs = 3
	code, stdout, stderr := runCLI(t, "eval", "--run", runDir, "--knn-k", "10", "--george-full-epochs", fmt.Sprint(epochs))
	if code != 0 {
		t.Fatalf("eval exited %d:\n%s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(runDir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		George     map[string]any `json:"george"`
		GeorgeFull *struct {
			SelectedStep     int      `json:"selected_step"`
			ValWorstGroupAcc *float64 `json:"val_worst_group_acc"`
			NumTrainGroup    int      `json:"num_train_groups"`
			TestAcc          float64  `json:"test_acc"`
			WorstGroupAcc    float64  `json:"worst_group_acc"`
			PerGroup         []struct {
				ID       int64   `json:"id"`
				N        int     `json:"n"`
				Correct  int     `json:"correct"`
				Accuracy float64 `json:"accuracy"`
			} `json:"per_group"`
			GroupWeights []struct {
				N      int     `json:"n"`
				Weight float64 `json:"weight"`
			} `json:"group_weights"`
		} `json:"george_full_network"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	g := m.GeorgeFull
	if g == nil || m.George == nil {
		t.Fatalf("metrics.json lacks george (%v) or george_full_network (%v); eval printed:\n%s%s", m.George != nil, g != nil, stdout, stderr)
	}
	if g.SelectedStep < 1 || g.SelectedStep > epochs || g.ValWorstGroupAcc == nil || *g.ValWorstGroupAcc < 0 || *g.ValWorstGroupAcc > 1 {
		t.Errorf("selected epoch %d of %d, validation worst found group %v", g.SelectedStep, epochs, g.ValWorstGroupAcc)
	}
	// the test split's four true groups (y, place), 10 images each, are what it reports on
	correct, n, worst := 0, 0, 1.0
	for _, pg := range g.PerGroup {
		if pg.N != 10 || pg.Accuracy != float64(pg.Correct)/float64(pg.N) {
			t.Errorf("test group %d: %d/%d reported as %v; want 10 images and the ratio", pg.ID, pg.Correct, pg.N, pg.Accuracy)
		}
		correct, n, worst = correct+pg.Correct, n+pg.N, math.Min(worst, pg.Accuracy)
	}
	if len(g.PerGroup) != 4 || n != 40 || g.TestAcc != float64(correct)/float64(n) || g.WorstGroupAcc != worst {
		t.Errorf("%d test groups over %d images: test accuracy %v (counts give %v), worst %v (groups give %v)",
			len(g.PerGroup), n, g.TestAcc, float64(correct)/float64(n), g.WorstGroupAcc, worst)
	}
	sum, rows := 0.0, 0
	for _, w := range g.GroupWeights {
		sum += w.Weight
		rows += w.N
	}
	if len(g.GroupWeights) != g.NumTrainGroup || g.NumTrainGroup < 2 || math.Abs(sum-1) > 1e-6 || rows != 96 {
		t.Errorf("%d found groups, %d weights summing to %v over %d training rows", g.NumTrainGroup, len(g.GroupWeights), sum, rows)
	}
	report, _ := os.ReadFile(filepath.Join(runDir, "report.md"))
	if !strings.Contains(string(report), "full network") {
		t.Errorf("report.md has no full-network column:\n%s", report)
	}

	// on the validation split it cannot select on validation: left out, with a warning
	code, _, stderr = runCLI(t, "eval", "--run", runDir, "--knn-k", "10", "--on", "val", "--george-full-epochs", "1")
	if code != 0 || !strings.Contains(stderr, "full-network variant skipped") {
		t.Errorf("eval --on val --george-full-epochs 1: exit %d, no skip warning:\n%s", code, stderr)
	}
	if raw, _ := os.ReadFile(filepath.Join(runDir, "metrics_val.json")); strings.Contains(string(raw), "george_full_network") {
		t.Errorf("metrics_val.json has george_full_network")
	}
}
