package data

import (
	"path/filepath"
	"testing"
)

func TestLoadMNISTGzipAndRaw(t *testing.T) {
	for _, gz := range []bool{true, false} {
		dir := t.TempDir()
		images, labels := idxImages(3, 4, 5), idxLabels(7, 0, 9)
		suffix := ""
		if gz {
			images, labels, suffix = gzipBytes(t, images), gzipBytes(t, labels), ".gz"
		}
		writeFile(t, filepath.Join(dir, "t10k-images-idx3-ubyte"+suffix), images)
		writeFile(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"+suffix), labels)
		ds, err := LoadMNIST(dir, "test")
		if err != nil {
			t.Fatalf("gzip=%v: %v", gz, err)
		}
		if ds.N != 3 || ds.C != 1 || ds.H != 4 || ds.W != 5 {
			t.Fatalf("shape %d %d %d %d", ds.N, ds.C, ds.H, ds.W)
		}
		if ds.Fine[0] != 7 || ds.Fine[2] != 9 || ds.Coarse[1] != 0 || ds.Group[0] != -1 {
			t.Errorf("labels fine=%v coarse=%v group=%v", ds.Fine, ds.Coarse, ds.Group)
		}
		if got := ds.Image(1)[3]; got != byte(1*7+3) {
			t.Errorf("pixel (1,3) = %d, want %d", got, 1*7+3)
		}
		if err := ds.ApplyLabelMap(MNISTDigitMap()); err != nil {
			t.Fatal(err)
		}
		if ds.Coarse[0] != 1 || ds.Coarse[1] != 0 || ds.CoarseNames[1] != "digit>=5" {
			t.Errorf("after digit map: %v %v", ds.Coarse, ds.CoarseNames)
		}
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	good := idxImages(2, 3, 3)
	cases := []struct {
		name           string
		images, labels []byte
		gz             bool
		want           []string
	}{
		{"swapped files", idxLabels(1, 2), good, false, []string{"train-images-idx3-ubyte", "magic number 2049, want 2051"}},
		{"labels magic", good, good, false, []string{"train-labels-idx1-ubyte", "magic number 2051, want 2049"}},
		{"truncated images", good[:len(good)-4], idxLabels(1, 2), false, []string{"train-images-idx3-ubyte", "truncated"}},
		{"trailing image bytes", append(append([]byte(nil), good...), 1, 2), idxLabels(1, 2), false, []string{"train-images-idx3-ubyte", "2 trailing bytes"}},
		{"truncated labels", good, idxLabels(1, 2)[:9], false, []string{"train-labels-idx1-ubyte", "truncated"}},
		{"short header", good[:10], idxLabels(1, 2), false, []string{"train-images-idx3-ubyte", "too short"}},
		{"count mismatch", good, idxLabels(1, 2, 3), false, []string{"has 2 images", "has 3 labels"}},
		{"label out of range", good, idxLabels(1, 12), false, []string{"train-labels-idx1-ubyte", "label 12 of record 1"}},
		{"truncated gzip", good, idxLabels(1, 2), true, []string{"train-images-idx3-ubyte.gz", "truncated or corrupt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			images, labels, suffix := tc.images, tc.labels, ""
			if tc.gz {
				z := gzipBytes(t, images)
				images, labels, suffix = z[:len(z)/2], gzipBytes(t, labels), ".gz"
			}
			writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte"+suffix), images)
			writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"+suffix), labels)
			_, err := LoadMNIST(dir, "train")
			wantErr(t, err, tc.want...)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := LoadFashionMNIST(t.TempDir(), "train")
		wantErr(t, err, "train-images-idx3-ubyte.gz", "dataset-fashion-mnist")
	})
	t.Run("unknown split", func(t *testing.T) {
		_, err := LoadMNIST(t.TempDir(), "validation")
		wantErr(t, err, `"validation"`, "train")
	})
}
