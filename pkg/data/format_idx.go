package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), number of dimensions.
const (
	idxLabelsMagic = 0x00000801 // 2049
	idxImagesMagic = 0x00000803 // 2051
)

// MNISTClassNames are the digit names, MNIST's fine classes.
var MNISTClassNames = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// FashionMNISTClassNames are Fashion-MNIST's ten classes, in label order.
var FashionMNISTClassNames = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// DefaultFashionMNISTDir is where Debian's dataset-fashion-mnist package installs the four
// gzipped IDX files, under the same names as MNIST's.
const DefaultFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// mnistFileNames returns the images and labels file base names (without .gz) of a split.
func mnistFileNames(split string) (images, labels string, err error) {
	switch split {
	case "train":
		return "train-images-idx3-ubyte", "train-labels-idx1-ubyte", nil
	case "test":
		return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", nil
	}
	return "", "", fmt.Errorf("unknown MNIST split %q: want \"train\" or \"test\"", split)
}

// LoadMNIST reads the MNIST split ("train" or "test") from dir, which holds the official IDX files,
// gzipped (train-images-idx3-ubyte.gz, ...) or not. Coarse == Fine == the digit; apply MNISTDigitMap
// for the paper's digit<5 / digit>=5 split.
func LoadMNIST(dir, split string) (*Dataset, error) {
	return loadIDXPair(dir, split, "mnist", MNISTClassNames)
}

// LoadFashionMNIST reads Fashion-MNIST, laid out and named as MNIST is (Debian installs it in
// DefaultFashionMNISTDir). Coarse == Fine == the class; apply FashionMNISTUpperBodyMap to coarsen.
func LoadFashionMNIST(dir, split string) (*Dataset, error) {
	return loadIDXPair(dir, split, "fashion-mnist", FashionMNISTClassNames)
}

func loadIDXPair(dir, split, name string, classNames []string) (*Dataset, error) {
	imagesBase, labelsBase, err := mnistFileNames(split)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", name, dir, err)
	}
	imagesPath, err := findMaybeGz(dir, imagesBase)
	if err != nil {
		return nil, err
	}
	labelsPath, err := findMaybeGz(dir, labelsBase)
	if err != nil {
		return nil, err
	}
	images, err := readMaybeGzipFile(imagesPath)
	if err != nil {
		return nil, err
	}
	labels, err := readMaybeGzipFile(labelsPath)
	if err != nil {
		return nil, err
	}
	ds, err := DatasetFromIDX(images, imagesPath, labels, labelsPath, classNames)
	if err != nil {
		return nil, err
	}
	ds.Name = name + "-" + split
	return ds, nil
}

// findMaybeGz returns dir/base.gz if it exists, else dir/base, else an error naming both.
func findMaybeGz(dir, base string) (string, error) {
	for _, p := range []string{filepath.Join(dir, base+".gz"), filepath.Join(dir, base)} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: neither %s.gz nor %s found (MNIST: FetchMNIST(dir) downloads it; Fashion-MNIST: apt-get install dataset-fashion-mnist installs it in %s)",
		dir, base, base, DefaultFashionMNISTDir)
}

// readMaybeGzipFile reads a whole file, decompressing it when it starts with the gzip magic bytes
// (so a file's name need not say whether it is compressed).
func readMaybeGzipFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err // os errors already name the file
	}
	b, err := maybeGunzip(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func maybeGunzip(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		return raw, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("bad gzip header: %w", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gzip data truncated or corrupt after %d decompressed bytes: %w", len(out), err)
	}
	return out, nil
}

// ParseIDXImages parses an uncompressed IDX3 unsigned-byte image file (magic 2051). name is used in
// error messages only.
func ParseIDXImages(b []byte, name string) (n, rows, cols int, pixels []uint8, err error) {
	// The magic number first: a swapped or foreign file says more by its magic than by its length.
	if len(b) >= 4 && binary.BigEndian.Uint32(b) != idxImagesMagic {
		return 0, 0, 0, nil, fmt.Errorf("%s: magic number %d, want %d for an IDX image file (is it a labels file, or not IDX at all?)", name, binary.BigEndian.Uint32(b), idxImagesMagic)
	}
	if len(b) < 16 {
		return 0, 0, 0, nil, fmt.Errorf("%s: %d bytes, too short for an IDX image header (16 bytes)", name, len(b))
	}
	nn, r, c := uint64(binary.BigEndian.Uint32(b[4:])), uint64(binary.BigEndian.Uint32(b[8:])), uint64(binary.BigEndian.Uint32(b[12:]))
	if r == 0 || c == 0 {
		return 0, 0, 0, nil, fmt.Errorf("%s: image size %dx%d is empty", name, r, c)
	}
	// Each factor is < 2^32, so the product of counts and image size is checked in two steps.
	if r*c > 1<<24 {
		return 0, 0, 0, nil, fmt.Errorf("%s: image size %dx%d is implausibly large", name, r, c)
	}
	want := nn * r * c
	have := uint64(len(b) - 16)
	if want != have {
		if want > have {
			return 0, 0, 0, nil, fmt.Errorf("%s: truncated: header says %d images of %dx%d (%d bytes), file has %d bytes of pixels", name, nn, r, c, want, have)
		}
		return 0, 0, 0, nil, fmt.Errorf("%s: %d trailing bytes after %d images of %dx%d", name, have-want, nn, r, c)
	}
	return int(nn), int(r), int(c), b[16:], nil
}

// ParseIDXLabels parses an uncompressed IDX1 unsigned-byte label file (magic 2049).
func ParseIDXLabels(b []byte, name string) ([]uint8, error) {
	if len(b) >= 4 && binary.BigEndian.Uint32(b) != idxLabelsMagic {
		return nil, fmt.Errorf("%s: magic number %d, want %d for an IDX label file (is it an images file, or not IDX at all?)", name, binary.BigEndian.Uint32(b), idxLabelsMagic)
	}
	if len(b) < 8 {
		return nil, fmt.Errorf("%s: %d bytes, too short for an IDX label header (8 bytes)", name, len(b))
	}
	n := uint64(binary.BigEndian.Uint32(b[4:]))
	have := uint64(len(b) - 8)
	if n > have {
		return nil, fmt.Errorf("%s: truncated: header says %d labels, file has %d", name, n, have)
	}
	if n < have {
		return nil, fmt.Errorf("%s: %d trailing bytes after %d labels", name, have-n, n)
	}
	return b[8:], nil
}

// DatasetFromIDX builds a one-channel Dataset from uncompressed (or gzipped) IDX image and label
// bytes; the names are for error messages. Every label must be < len(classNames).
func DatasetFromIDX(images []byte, imagesName string, labels []byte, labelsName string, classNames []string) (*Dataset, error) {
	images, err := maybeGunzip(images)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imagesName, err)
	}
	labels, err = maybeGunzip(labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", labelsName, err)
	}
	n, rows, cols, pixels, err := ParseIDXImages(images, imagesName)
	if err != nil {
		return nil, err
	}
	lab, err := ParseIDXLabels(labels, labelsName)
	if err != nil {
		return nil, err
	}
	if len(lab) != n {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", imagesName, n, labelsName, len(lab))
	}
	fine := make([]int64, n)
	for i, l := range lab {
		if int(l) >= len(classNames) {
			return nil, fmt.Errorf("%s: label %d of record %d out of range [0,%d)", labelsName, l, i, len(classNames))
		}
		fine[i] = int64(l)
	}
	ds := &Dataset{
		Name: "idx", N: n, C: 1, H: rows, W: cols,
		Pixels:      append([]uint8(nil), pixels...),
		Coarse:      append([]int64(nil), fine...),
		Fine:        fine,
		Group:       filled(n, -1),
		CoarseNames: append([]string(nil), classNames...),
		FineNames:   append([]string(nil), classNames...),
	}
	return ds, ds.Validate()
}
