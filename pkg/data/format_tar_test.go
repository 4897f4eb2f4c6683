package data

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadImageTarGzSynthetic(t *testing.T) {
	var members []tarMember
	// Members out of order, a stray file and another split: the result must not depend on them.
	for _, class := range []string{"truck", "airplane"} {
		for i := 4; i >= 0; i-- {
			v := uint8(i * 40)
			members = append(members, tarMember{fmt.Sprintf("./train/%s/%04d.png", class, i), pngBytes(t, solidImage(32, 32, color.RGBA{v, v, v, 255}))})
		}
	}
	members = append(members, tarMember{"train/README.txt", []byte("x")}, tarMember{"test/truck/0000.png", []byte("not read")})
	archive := writeFile(t, filepath.Join(t.TempDir(), "mini-train.tar.gz"), tarGzBytes(t, members))
	ds, err := LoadImageTarGz(archive, "train", FolderOptions{ImageOptions: ImageOptions{H: 32, W: 32, C: 3}, PerClassLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 4 || ds.FineNames[0] != "airplane" || ds.Fine[2] != 1 {
		t.Fatalf("N=%d names=%v fine=%v", ds.N, ds.FineNames, ds.Fine)
	}
	if !strings.HasSuffix(ds.Source[1], "airplane/0001.png") || ds.Image(1)[0] != 40 {
		t.Errorf("source %q pixel %d", ds.Source[1], ds.Image(1)[0])
	}
	all, err := LoadImageTarGz(archive, "train", FolderOptions{ImageOptions: ImageOptions{H: 16, W: 16, C: 1}, Classes: []string{"truck", "ship", "airplane"}})
	if err != nil {
		t.Fatal(err)
	}
	if all.N != 10 || all.Fine[0] != 0 || all.Fine[9] != 2 || len(all.FineNames) != 3 {
		t.Errorf("fixed classes: N=%d fine=%v", all.N, all.Fine)
	}
}

func TestLoadImageTarGzErrors(t *testing.T) {
	good := tarGzBytes(t, []tarMember{{"train/a/0.png", pngBytes(t, solidImage(4, 4, color.RGBA{}))}, {"train/a/1.png", pngBytes(t, solidImage(4, 4, color.RGBA{}))}})
	corrupt := tarGzBytes(t, []tarMember{{"train/a/0.jpg", []byte{0xff, 0xd8, 0xff, 0x00}}})
	o := FolderOptions{ImageOptions: ImageOptions{H: 4, W: 4, C: 3}}
	cases := []struct {
		name string
		data []byte
		want []string
	}{
		{"truncated", good[:len(good)*2/3], []string{"x.tar.gz", "truncated or corrupt"}},
		{"not gzip", []byte("plain text"), []string{"x.tar.gz", "not a gzip file"}},
		{"corrupt image", corrupt, []string{"x.tar.gz:train/a/0.jpg"}},
		{"no images", tarGzBytes(t, []tarMember{{"other/a/0.png", nil}}), []string{"x.tar.gz", "no images under train"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(t.TempDir(), "x.tar.gz"), tc.data)
			_, err := LoadImageTarGz(p, "train", o)
			wantErr(t, err, tc.want...)
		})
	}
}

func TestVerifySHA256SUMS(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.bin"), []byte("hello\n"))
	// sha256("hello\n")
	sum := "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	writeFile(t, filepath.Join(dir, "SHA256SUMS"), []byte(sum+"  a.bin\n"))
	if st, err := VerifySHA256SUMS(filepath.Join(dir, "SHA256SUMS")); err != nil || len(st) != 1 || !st[0].OK {
		t.Fatalf("good file: %v %v", st, err)
	}
	writeFile(t, filepath.Join(dir, "a.bin"), []byte("hellO\n"))
	writeFile(t, filepath.Join(dir, "SHA256SUMS"), []byte(sum+"  a.bin\n"+sum+" *b.bin\n"))
	st, err := VerifySHA256SUMS(filepath.Join(dir, "SHA256SUMS"))
	wantErr(t, err, "2 file(s) failed", "a.bin: sha256", "b.bin: missing")
	if len(st) != 2 || st[0].OK || st[1].Present {
		t.Errorf("statuses %v", st)
	}
	writeFile(t, filepath.Join(dir, "SHA256SUMS"), []byte(sum+"  ../a.bin\n"))
	_, err = VerifySHA256SUMS(filepath.Join(dir, "SHA256SUMS"))
	wantErr(t, err, "SHA256SUMS:1", "leaves the folder")
	writeFile(t, filepath.Join(dir, "SHA256SUMS"), []byte("abc  a.bin\n"))
	_, err = VerifySHA256SUMS(filepath.Join(dir, "SHA256SUMS"))
	wantErr(t, err, "SHA256SUMS:1", "64 hex digits")
}

// cifar10JPGDir finds ../shared/data/cifar10-jpg, or skips loudly: the repository never holds a copy.
func cifar10JPGDir(t *testing.T) string {
	dir := filepath.Join(sharedDir(), "data", "cifar10-jpg")
	if _, err := os.Stat(filepath.Join(dir, "cifar10-jpg-test.tar.gz")); err != nil {
		t.Skipf("SKIPPING REAL-DATA TEST: shared data absent (%v). Set SPREADTRAIN_SHARED to the shared folder "+
			"(default ../shared beside the repository) to run it; the synthetic tar tests still cover the reader.", err)
	}
	return dir
}

func TestCIFAR10JPGSharedTestArchive(t *testing.T) {
	dir := cifar10JPGDir(t)
	ds, err := LoadImageTarGz(filepath.Join(dir, "cifar10-jpg-test.tar.gz"), "test",
		FolderOptions{ImageOptions: ImageOptions{H: 32, W: 32, C: 3}, PerClassLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 200 || ds.C != 3 || ds.H != 32 || ds.W != 32 {
		t.Fatalf("shape N=%d C=%d H=%d W=%d", ds.N, ds.C, ds.H, ds.W)
	}
	for i, n := range CIFAR10ClassNames {
		if ds.FineNames[i] != n {
			t.Fatalf("classes %v, want %v", ds.FineNames, CIFAR10ClassNames)
		}
	}
	for c, n := range ds.FineCounts() {
		if n != 20 {
			t.Errorf("class %s: %d images, want 20", ds.FineNames[c], n)
		}
	}
	if err := ds.ApplyLabelMap(CIFAR10VehicleAnimalMap()); err != nil {
		t.Fatal(err)
	}
	if got := ds.CoarseCounts(); got[0] != 80 || got[1] != 120 {
		t.Errorf("vehicle/animal counts %v, want [80 120]", got)
	}
	// Per-channel statistics near CIFAR-10's published mean (0.4914, 0.4822, 0.4465) and std
	// (0.2470, 0.2435, 0.2616); 200 images and JPEG re-encoding leave a few points of slack.
	wantMean := []float64{0.4914, 0.4822, 0.4465}
	wantStd := []float64{0.2470, 0.2435, 0.2616}
	plane := ds.H * ds.W
	for c := 0; c < 3; c++ {
		var sum, sq float64
		for i := 0; i < ds.N; i++ {
			for _, v := range ds.Image(i)[c*plane : (c+1)*plane] {
				f := float64(v) / 255
				sum += f
				sq += f * f
			}
		}
		n := float64(ds.N * plane)
		mean := sum / n
		std := sqrt(sq/n - mean*mean)
		if d := mean - wantMean[c]; d < -0.05 || d > 0.05 {
			t.Errorf("channel %d mean %.4f, want about %.4f", c, mean, wantMean[c])
		}
		if d := std - wantStd[c]; d < -0.04 || d > 0.04 {
			t.Errorf("channel %d std %.4f, want about %.4f", c, std, wantStd[c])
		}
	}
}

func TestCIFAR10JPGSharedChecksums(t *testing.T) {
	dir := cifar10JPGDir(t)
	if testing.Short() {
		t.Skip("hashing 20 MB of archives; skipped with -short")
	}
	st, err := Verify("cifar10-jpg", dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Errorf("statuses %v", st)
	}
}
