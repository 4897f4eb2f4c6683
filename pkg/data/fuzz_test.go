package data

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets hold the parsers to "a valid dataset or an error, never a panic". Run one with
// e.g. `go test -run '^$' -fuzz FuzzIDX -fuzztime 30s ./pkg/data/`; plain `go test` replays the seed
// corpus in testdata/fuzz/ (regenerate it with SPREADTRAIN_WRITE_CORPUS=1 go test -run WriteFuzzSeedCorpus).

func FuzzIDX(f *testing.F) {
	f.Add(idxImages(2, 2, 3), idxLabels(1, 9))
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		ds, err := DatasetFromIDX(images, "images", labels, "labels", MNISTClassNames)
		if err != nil {
			return
		}
		if err := ds.Validate(); err != nil {
			t.Fatalf("parsed an invalid dataset: %v", err)
		}
	})
}

func FuzzCIFAR(f *testing.F) {
	f.Add(cifar10Records(1), false)
	f.Fuzz(func(t *testing.T, b []byte, cifar100 bool) {
		var ds *Dataset
		var err error
		if cifar100 {
			ds, err = ParseCIFAR100(b, "fuzz.bin", CIFAR100SuperclassNames, CIFAR100ClassNames)
		} else {
			ds, err = ParseCIFAR10(b, "fuzz.bin", CIFAR10ClassNames)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.bin") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := ds.Validate(); err != nil {
			t.Fatalf("parsed an invalid dataset: %v", err)
		}
	})
}

func FuzzCSV(f *testing.F) {
	f.Add([]byte("path,label,group,split\na.png,0,1,train\nb/c.png,1,,2\n"), "")
	pixel := pngBytes(f, solidImage(2, 2, color.RGBA{5, 6, 7, 255}))
	f.Fuzz(func(t *testing.T, csvBytes []byte, split string) {
		o := CSVOptions{ImageOptions: ImageOptions{H: 2, W: 2, C: 1, Workers: 1}}
		rows, err := ParseMetadataCSV(strings.NewReader(string(csvBytes)), "fuzz.csv", split, o)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, r := range rows {
			if !filepath.IsLocal(filepath.FromSlash(r.Path)) {
				t.Fatalf("line %d: path %q escapes the root but was accepted", r.Line, r.Path)
			}
		}
		ds, err := datasetFromRows(rows, "fuzz.csv", o, func(rel string) (string, func() ([]byte, error)) {
			return rel, func() ([]byte, error) { return pixel, nil }
		})
		if err != nil {
			return
		}
		if err := ds.Validate(); err != nil {
			t.Fatalf("built an invalid dataset: %v", err)
		}
	})
}

func FuzzImage(f *testing.F) {
	f.Add(pngBytes(f, solidImage(3, 2, color.RGBA{1, 2, 3, 255})), uint8(4), uint8(4), false)
	f.Fuzz(func(t *testing.T, b []byte, h, w uint8, gray bool) {
		o := ImageOptions{H: 1 + int(h%48), W: 1 + int(w%48), C: 3, MaxSourcePixels: 1 << 16}
		if gray {
			o.C = 1
		}
		dst := make([]uint8, o.C*o.H*o.W)
		if err := DecodeImage(b, "fuzz.img", o, dst); err != nil && !strings.Contains(err.Error(), "fuzz.img") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// TestWriteFuzzSeedCorpus writes the committed seed corpus (valid inputs and near misses) when
// SPREADTRAIN_WRITE_CORPUS=1; otherwise it does nothing.
func TestWriteFuzzSeedCorpus(t *testing.T) {
	if os.Getenv("SPREADTRAIN_WRITE_CORPUS") != "1" {
		t.Skip("set SPREADTRAIN_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target, name string, values ...any) {
		var sb strings.Builder
		sb.WriteString("go test fuzz v1\n")
		for _, v := range values {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&sb, "[]byte(%q)\n", v)
			case string:
				fmt.Fprintf(&sb, "string(%q)\n", v)
			case bool:
				fmt.Fprintf(&sb, "bool(%v)\n", v)
			case uint8:
				fmt.Fprintf(&sb, "byte(%q)\n", rune(v))
			}
		}
		writeFile(t, filepath.Join("testdata", "fuzz", target, name), []byte(sb.String()))
	}
	imgs, labs := idxImages(3, 4, 4), idxLabels(0, 5, 9)
	write("FuzzIDX", "valid", imgs, labs)
	write("FuzzIDX", "valid-gzip", gzipBytes(t, imgs), gzipBytes(t, labs))
	write("FuzzIDX", "truncated", imgs[:len(imgs)-3], labs)
	write("FuzzIDX", "swapped", labs, imgs)
	write("FuzzIDX", "label-out-of-range", imgs, idxLabels(0, 5, 10))

	write("FuzzCIFAR", "cifar10", cifar10Records(2), false)
	write("FuzzCIFAR", "cifar100", cifar100Records(2), true)
	write("FuzzCIFAR", "truncated", cifar10Records(2)[:cifar10RecordBytes+7], false)
	bad := cifar100Records(1)
	bad[1] = 200
	write("FuzzCIFAR", "bad-fine", bad, true)

	write("FuzzCSV", "waterbirds-like", []byte("path,label,fine_label,group,split\nimgs/a.png,0,3,1,0\nimgs/b.png,1,-1,,1\n\"c,d.png\",1,2,0,test\n"), "train")
	write("FuzzCSV", "escape", []byte("path,label\n../x.png,0\n/abs.png,1\n"), "")
	write("FuzzCSV", "bad-split", []byte("path,label,split\na.png,0,holdout\n"), "")
	write("FuzzCSV", "quotes", []byte("path,label\n\"a\"\"b.png\",0\n\"unterminated,1\n"), "")
	write("FuzzCSV", "bom", []byte("\ufeffpath,label\na.png,0\n"), "val")

	g := image.NewGray(image.Rect(0, 0, 5, 3))
	p16 := image.NewRGBA64(image.Rect(0, 0, 2, 2))
	pal := image.NewPaletted(image.Rect(0, 0, 3, 3), color.Palette{color.Black, color.RGBA{200, 0, 0, 255}})
	jp := jpegBytes(t, solidImage(9, 7, color.RGBA{200, 100, 50, 255}))
	pn := pngBytes(t, solidImage(6, 6, color.RGBA{1, 2, 3, 128}))
	write("FuzzImage", "png-rgba", pn, uint8(4), uint8(4), false)
	write("FuzzImage", "png-gray", pngBytes(t, g), uint8(9), uint8(2), false)
	write("FuzzImage", "png-16bit", pngBytes(t, p16), uint8(1), uint8(1), true)
	write("FuzzImage", "png-paletted", pngBytes(t, pal), uint8(3), uint8(3), false)
	write("FuzzImage", "jpeg", jp, uint8(31), uint8(31), false)
	write("FuzzImage", "jpeg-gray", jpegBytes(t, g), uint8(2), uint8(2), true)
	write("FuzzImage", "jpeg-truncated", jp[:len(jp)-30], uint8(4), uint8(4), false)
	write("FuzzImage", "png-truncated", pn[:len(pn)/2], uint8(4), uint8(4), true)
}
