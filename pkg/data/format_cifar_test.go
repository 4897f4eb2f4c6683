package data

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCIFAR10(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "cifar-10-batches-bin")
	for i := 1; i <= 5; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)), cifar10Records(4))
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), cifar10Records(12))
	names := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n"
	writeFile(t, filepath.Join(dir, "batches.meta.txt"), []byte(names))
	train, err := LoadCIFAR10(root, "train")
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 20 || train.C != 3 || train.H != 32 || train.W != 32 {
		t.Fatalf("shape N=%d C=%d H=%d W=%d", train.N, train.C, train.H, train.W)
	}
	if train.FineNames[9] != "j" || train.Fine[5] != 1 || train.Image(5)[100] != 1 {
		t.Errorf("names %v fine %v pixel %d", train.FineNames, train.Fine[:6], train.Image(5)[100])
	}
	if !strings.Contains(train.Source[5], "data_batch_2.bin record 1") {
		t.Errorf("source %q", train.Source[5])
	}
	// The folder itself works too, and without the names file the built-in names apply.
	test, err := LoadCIFAR10(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if test.N != 12 || test.Fine[11] != 1 {
		t.Errorf("test N=%d fine=%v", test.N, test.Fine)
	}
	if err := test.ApplyLabelMap(CIFAR10VehicleAnimalMap()); err == nil {
		t.Error("a map for CIFAR-10's names applied to a set named a..j: want an error")
	}
}

func TestCIFARErrors(t *testing.T) {
	bad := cifar10Records(3)
	bad[cifar10RecordBytes*2] = 10
	cases := []struct {
		name  string
		file  string
		bytes []byte
		want  []string
	}{
		{"truncated", "test_batch.bin", cifar10Records(3)[:3*cifar10RecordBytes-5], []string{"test_batch.bin", "truncated", "2 whole records"}},
		{"empty", "test_batch.bin", nil, []string{"test_batch.bin", "empty"}},
		{"label out of range", "test_batch.bin", bad, []string{"test_batch.bin", "record 2", "label 10 out of range"}},
		{"names file", "batches.meta.txt", []byte("a\nb\n"), []string{"batches.meta.txt", "2 class names, want 10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "test_batch.bin"), cifar10Records(2))
			writeFile(t, filepath.Join(dir, tc.file), tc.bytes)
			_, err := LoadCIFAR10(dir, "test")
			wantErr(t, err, tc.want...)
		})
	}
	t.Run("missing batch", func(t *testing.T) {
		_, err := LoadCIFAR10(t.TempDir(), "train")
		wantErr(t, err, "data_batch_1.bin")
	})
}

func TestLoadCIFAR100(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "cifar-100-binary")
	writeFile(t, filepath.Join(dir, "train.bin"), cifar100Records(200))
	ds, err := LoadCIFAR100(root, "train")
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 200 || ds.Fine[3] != 3 || ds.Coarse[3] != 8 || ds.CoarseNames[8] != "large_carnivores" || ds.FineNames[3] != "bear" {
		t.Errorf("N=%d fine=%d coarse=%d", ds.N, ds.Fine[3], ds.Coarse[3])
	}
	// The records' superclass bytes agree with the built-in map.
	m := CIFAR100SuperclassMap()
	for i := 0; i < ds.N; i++ {
		if int(ds.Coarse[i]) != m.FineToCoarse[ds.Fine[i]] {
			t.Fatalf("record %d: coarse %d, map says %d", i, ds.Coarse[i], m.FineToCoarse[ds.Fine[i]])
		}
	}
	bad := cifar100Records(2)
	bad[cifar100RecordBytes+1] = 100
	writeFile(t, filepath.Join(dir, "test.bin"), bad)
	_, err = LoadCIFAR100(root, "test")
	wantErr(t, err, "test.bin", "record 1", "fine label 100")
	bad[cifar100RecordBytes] = 20
	writeFile(t, filepath.Join(dir, "test.bin"), bad)
	_, err = LoadCIFAR100(root, "test")
	wantErr(t, err, "test.bin", "record 1", "coarse label 20")
	writeFile(t, filepath.Join(dir, "test.bin"), cifar100Records(2)[:cifar100RecordBytes+1])
	_, err = LoadCIFAR100(root, "test")
	wantErr(t, err, "test.bin", "not a multiple of the 3074-byte record")
}
