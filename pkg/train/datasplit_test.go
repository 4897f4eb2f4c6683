package train

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A csv dataset described by data.columns in YAML, with an official val split: training validates on
// that split, not on a holdout of the training rows.
func TestLoadTrainValUsesOfficialValSplit(t *testing.T) {
	dir := t.TempDir()
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	csv := "file,cls,part\n"
	for i, part := range []string{"tr", "tr", "tr", "tr", "va", "te", "tr", "tr", "va", "te"} {
		img.SetGray(0, 0, color.Gray{Y: uint8(i)})
		buf.Reset()
		png.Encode(&buf, img)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.png", i)), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		csv += fmt.Sprintf("%d.png,%d,%s\n", i, i%2, part)
	}
	csvPath := filepath.Join(dir, "meta.csv")
	if err := os.WriteFile(csvPath, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf(`data:
  name: csv
  csv: %s
  dir: %s
  image_size: 4
  channels: 1
  columns: {path: file, label: cls, split: part}
`, csvPath, dir)
	cfg, err := ParseConfigYAML([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	// the split values are train/val/test (or 0/1/2); another coding is an error naming the row
	if _, _, err := loadTrainVal(cfg, ""); err == nil || !strings.Contains(err.Error(), "meta.csv:2") {
		t.Fatalf("split value tr: error %v, want one naming meta.csv:2", err)
	}
	csv = strings.NewReplacer(",tr\n", ",train\n", ",va\n", ",val\n", ",te\n", ",test\n").Replace(csv)
	if err := os.WriteFile(csvPath, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	train, val, err := loadTrainVal(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 6 || val.N != 2 || val.Image(0)[0] != 4 || val.Image(1)[0] != 8 {
		t.Errorf("train %d, val %d (first pixels %d, %d): want 6 and the 2 official val rows 4 and 8", train.N, val.N, val.Image(0)[0], val.Image(1)[0])
	}
	test, err := loadSplit(cfg, "", "test")
	if err != nil || test.N != 2 {
		t.Errorf("test: %v, %d rows, want 2", err, test.N)
	}
}
