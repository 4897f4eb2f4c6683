package data

import (
	"image/color"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadMetadataCSV(t *testing.T) {
	root := t.TempDir()
	px := pngBytes(t, solidImage(6, 6, color.RGBA{10, 20, 30, 255}))
	for _, p := range []string{"imgs/a.png", "imgs/b.png", "imgs/c.png", "imgs/d.png"} {
		writeFile(t, filepath.Join(root, filepath.FromSlash(p)), px)
	}
	csvText := "img_filename,y,place,split\n" +
		"imgs/a.png,0,1,0\n" +
		"imgs/b.png,1,1,0\n" +
		"\"imgs/c.png\",1,0,2\n" +
		"imgs/d.png,0,0,1\n"
	csvPath := writeFile(t, filepath.Join(root, "metadata.csv"), []byte(csvText))
	o := CSVOptions{
		ImageOptions: ImageOptions{H: 4, W: 4, C: 3},
		Columns:      CSVColumns{Path: "img_filename", Label: "y", Group: "place"},
		LabelNames:   []string{"landbird", "waterbird"},
	}
	train, err := LoadMetadataCSV(csvPath, root, "train", o)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 2 || train.Coarse[1] != 1 || train.Group[0] != 1 || train.Fine[0] != -1 || train.CoarseNames[1] != "waterbird" {
		t.Errorf("train: N=%d coarse=%v group=%v fine=%v", train.N, train.Coarse, train.Group, train.Fine)
	}
	if train.Source[1] != csvPath+":3" || train.Image(0)[0] != 10 {
		t.Errorf("source %q pixel %d", train.Source[1], train.Image(0)[0])
	}
	all, err := LoadMetadataCSV(csvPath, root, "", o)
	if err != nil {
		t.Fatal(err)
	}
	if all.N != 4 {
		t.Errorf("all rows: %d", all.N)
	}
}

func TestMetadataCSVErrors(t *testing.T) {
	o := CSVOptions{ImageOptions: ImageOptions{H: 4, W: 4, C: 3}}
	cases := []struct {
		name, csv string
		want      []string
	}{
		{"missing label column", "path,split\na.png,train\n", []string{`no "label" column`, "path, split"}},
		{"bad label", "path,label\na.png,0\nb.png,cat\n", []string{"meta.csv:3", "label", `"cat" is not an integer`}},
		{"negative label", "path,label\na.png,-2\n", []string{"meta.csv:2", "negative"}},
		{"bad group", "path,label,group\na.png,0,x\n", []string{"meta.csv:2", "group", `"x"`}},
		{"dotdot path", "path,label\n../secret.png,0\n", []string{"meta.csv:2", `"../secret.png"`, "inside the dataset root"}},
		{"nested dotdot", "path,label\nimgs/../../x.png,0\n", []string{"meta.csv:2", "inside the dataset root"}},
		{"absolute path", "path,label\n/etc/passwd,0\n", []string{"meta.csv:2", `"/etc/passwd"`}},
		{"empty path", "path,label\n,0\n", []string{"meta.csv:2", "empty path"}},
		{"unknown split", "path,label,split\na.png,0,train\nb.png,0,holdout\n", []string{"meta.csv:3", `unknown split value "holdout"`}},
		{"missing file", "path,label\na.png,0\nnope.png,1\n", []string{"meta.csv:3", "nope.png", "no such file"}},
		{"ragged row", "path,label\na.png,0,extra\n", []string{"meta.csv", "wrong number of fields"}},
		{"empty", "", []string{"meta.csv", "empty file"}},
		{"label beyond names", "path,label\na.png,2\n", []string{"meta.csv:2", "label 2 out of range"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "a.png"), pngBytes(t, solidImage(4, 4, color.RGBA{1, 2, 3, 255})))
			writeFile(t, filepath.Join(root, "b.png"), pngBytes(t, solidImage(4, 4, color.RGBA{1, 2, 3, 255})))
			csvPath := writeFile(t, filepath.Join(root, "meta.csv"), []byte(tc.csv))
			oo := o
			if strings.Contains(tc.name, "beyond") {
				oo.LabelNames = []string{"x", "y"}
			}
			_, err := LoadMetadataCSV(csvPath, root, "", oo)
			wantErr(t, err, tc.want...)
		})
	}
	t.Run("split asked without column", func(t *testing.T) {
		root := t.TempDir()
		csvPath := writeFile(t, filepath.Join(root, "meta.csv"), []byte("path,label\na.png,0\n"))
		_, err := LoadMetadataCSV(csvPath, root, "train", o)
		wantErr(t, err, "meta.csv", `no "split" column`)
	})
}
