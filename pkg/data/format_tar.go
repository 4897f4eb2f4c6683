package data

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// maxTarEntryBytes bounds one image read from an archive; no 32x32 (or even ISIC-sized) JPEG is near it.
const maxTarEntryBytes = 64 << 20

type tarImage struct {
	name string
	data []byte
}

// LoadImageTarGz reads images straight from a .tar.gz laid out as <split>/<class>/<file>.{jpg,png}
// (a leading "./" is allowed; split "" means <class>/<file>), without extracting it: the layout of
// ../shared/data/cifar10-jpg. Classes and images are sorted by name, and PerClassLimit keeps the first
// k names of each class, so the result does not depend on the archive's member order.
func LoadImageTarGz(archive, split string, o FolderOptions) (*Dataset, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: not a gzip file: %w", archive, err)
	}
	byClass := map[string][]tarImage{}
	// keepFirst sorts a class's images and drops all but the first k; called whenever a class holds
	// 2k, so memory stays bounded by the limit, not by the archive.
	keepFirst := func(class string) {
		imgs := byClass[class]
		sort.Slice(imgs, func(i, j int) bool { return imgs[i].name < imgs[j].name })
		if o.PerClassLimit > 0 && len(imgs) > o.PerClassLimit {
			byClass[class] = imgs[:o.PerClassLimit:o.PerClassLimit]
		}
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: truncated or corrupt archive: %w", archive, err)
		}
		if hdr.Typeflag != tar.TypeReg || !isImageFile(hdr.Name) {
			continue
		}
		class, ok := tarClass(hdr.Name, split)
		if !ok {
			continue
		}
		if hdr.Size > maxTarEntryBytes {
			return nil, fmt.Errorf("%s: member %s is %d bytes, over the %d-byte limit for one image", archive, hdr.Name, hdr.Size, maxTarEntryBytes)
		}
		if _, seen := byClass[class]; !seen {
			byClass[class] = nil // record the class even when the limit lets none of its images in
		}
		if o.PerClassLimit > 0 && len(byClass[class]) >= 2*o.PerClassLimit {
			keepFirst(class)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: member %s: truncated or corrupt archive: %w", archive, hdr.Name, err)
		}
		byClass[class] = append(byClass[class], tarImage{name: hdr.Name, data: b})
	}
	classes := o.Classes
	if len(classes) == 0 {
		for c := range byClass {
			classes = append(classes, c)
		}
		sort.Strings(classes)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("%s: no images under %s/<class>/ in the archive", archive, split)
	}
	var jobs []imageJob
	var labels []int64
	for ci, class := range classes {
		keepFirst(class)
		for _, img := range byClass[class] {
			jobs = append(jobs, imageJob{source: archive + ":" + img.name, read: func() ([]byte, error) { return img.data, nil }})
			labels = append(labels, int64(ci))
		}
	}
	name := strings.TrimSuffix(filepath.Base(archive), ".tar.gz")
	return datasetFromJobs(name, jobs, labels, classes, o.ImageOptions)
}

// tarClass returns the class folder of a member named <split>/<class>/<file>.
func tarClass(name, split string) (string, bool) {
	name = strings.TrimPrefix(path.Clean(name), "./")
	parts := strings.Split(name, "/")
	if split == "" {
		return parts[0], len(parts) == 2
	}
	if len(parts) != 3 || parts[0] != split {
		return "", false
	}
	return parts[1], true
}

// FileStatus is the result of checking one file of a dataset.
type FileStatus struct {
	File     string // path checked
	Present  bool
	Size     int64
	Digest   string // hex digest computed (algorithm in Algo), "" when not computed
	Algo     string // "sha256", "md5" or "" (a structural check only)
	Expected string // the digest it should have, "" when none is known
	OK       bool
	Problem  string // why not OK; "" when OK
}

func (s FileStatus) String() string {
	if s.OK {
		return fmt.Sprintf("ok       %s", s.File)
	}
	return fmt.Sprintf("PROBLEM  %s: %s", s.File, s.Problem)
}

// VerifySHA256SUMS checks the files listed in a sha256sum-format file ("<hex>  <name>" per line,
// names relative to the file's folder). It returns one status per listed file; the error is non-nil
// when the sums file cannot be read or parsed, or any file is missing or differs.
func VerifySHA256SUMS(sumsPath string) ([]FileStatus, error) {
	b, err := os.ReadFile(sumsPath)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(sumsPath)
	var out []FileStatus
	var bad []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*") // "*" marks binary mode in sha256sum output
		if !ok || len(sum) != 64 || name == "" {
			return nil, fmt.Errorf("%s:%d: want \"<64 hex digits>  <file>\", got %q", sumsPath, i+1, line)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("%s:%d: %q is not a hex digest", sumsPath, i+1, sum)
		}
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("%s:%d: file name %q leaves the folder", sumsPath, i+1, name)
		}
		st := checkDigest(filepath.Join(dir, name), "sha256", strings.ToLower(sum))
		if !st.OK {
			bad = append(bad, st.String())
		}
		out = append(out, st)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%s: %d file(s) failed:\n%s", sumsPath, len(bad), strings.Join(bad, "\n"))
	}
	return out, nil
}

// checkDigest hashes a file with algo ("sha256" or "md5") and compares it to expected (if not "").
func checkDigest(p, algo, expected string) FileStatus {
	st := FileStatus{File: p, Algo: algo, Expected: expected}
	f, err := os.Open(p)
	if err != nil {
		st.Problem = err.Error()
		if os.IsNotExist(err) {
			st.Problem = "missing"
		}
		return st
	}
	defer f.Close()
	st.Present = true
	h := newHash(algo)
	n, err := io.Copy(h, f)
	st.Size = n
	if err != nil {
		st.Problem = "read error: " + err.Error()
		return st
	}
	st.Digest = hex.EncodeToString(h.Sum(nil))
	if expected != "" && st.Digest != expected {
		st.Problem = fmt.Sprintf("%s %s, want %s (corrupt, truncated or a different release)", algo, st.Digest, expected)
		return st
	}
	st.OK = true
	return st
}
