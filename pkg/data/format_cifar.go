package data

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	cifarImageBytes     = 3 * 32 * 32
	cifar10RecordBytes  = 1 + cifarImageBytes // label, then R, G, B planes of 32x32
	cifar100RecordBytes = 2 + cifarImageBytes // coarse label, fine label, then the planes
)

// CIFAR10ClassNames are CIFAR-10's classes in label order (as in batches.meta.txt).
var CIFAR10ClassNames = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// cifarDir returns dir/sub when it exists, else dir: callers may pass either the folder the
// archive was extracted into or the extracted folder itself.
func cifarDir(dir, sub string) string {
	if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
		return filepath.Join(dir, sub)
	}
	return dir
}

// LoadCIFAR10 reads the binary CIFAR-10 release: split "train" is data_batch_1.bin..data_batch_5.bin,
// "test" is test_batch.bin, in dir/cifar-10-batches-bin/ or in dir itself. Class names come from
// batches.meta.txt when present. Coarse == Fine == the class; apply CIFAR10VehicleAnimalMap for the
// paper's vehicles/animals split.
func LoadCIFAR10(dir, split string) (*Dataset, error) {
	dir = cifarDir(dir, "cifar-10-batches-bin")
	var files []string
	switch split {
	case "train":
		for i := 1; i <= 5; i++ {
			files = append(files, filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)))
		}
	case "test":
		files = []string{filepath.Join(dir, "test_batch.bin")}
	default:
		return nil, fmt.Errorf("CIFAR-10 in %s: unknown split %q: want \"train\" or \"test\"", dir, split)
	}
	names, err := readNamesFile(filepath.Join(dir, "batches.meta.txt"), CIFAR10ClassNames)
	if err != nil {
		return nil, err
	}
	var parts []*Dataset
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("CIFAR-10 %s split: %w", split, err)
		}
		ds, err := ParseCIFAR10(b, f, names)
		if err != nil {
			return nil, err
		}
		parts = append(parts, ds)
	}
	ds := concat(parts)
	ds.Name = "cifar10-" + split
	return ds, ds.Validate()
}

// LoadCIFAR100 reads the binary CIFAR-100 release: train.bin or test.bin in dir/cifar-100-binary/
// or in dir itself. Coarse is the record's superclass byte and Fine its class byte; names come from
// coarse_label_names.txt and fine_label_names.txt when present.
func LoadCIFAR100(dir, split string) (*Dataset, error) {
	dir = cifarDir(dir, "cifar-100-binary")
	if split != "train" && split != "test" {
		return nil, fmt.Errorf("CIFAR-100 in %s: unknown split %q: want \"train\" or \"test\"", dir, split)
	}
	coarseNames, err := readNamesFile(filepath.Join(dir, "coarse_label_names.txt"), CIFAR100SuperclassNames)
	if err != nil {
		return nil, err
	}
	fineNames, err := readNamesFile(filepath.Join(dir, "fine_label_names.txt"), CIFAR100ClassNames)
	if err != nil {
		return nil, err
	}
	f := filepath.Join(dir, split+".bin")
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("CIFAR-100 %s split: %w", split, err)
	}
	ds, err := ParseCIFAR100(b, f, coarseNames, fineNames)
	if err != nil {
		return nil, err
	}
	ds.Name = "cifar100-" + split
	return ds, nil
}

// ParseCIFAR10 parses CIFAR-10 binary records (1 label byte + 3072 pixel bytes each). name is used in
// error messages and Source.
func ParseCIFAR10(b []byte, name string, classNames []string) (*Dataset, error) {
	n, err := cifarRecordCount(b, name, cifar10RecordBytes, "1 label byte + 3072 pixel bytes")
	if err != nil {
		return nil, err
	}
	ds := newCIFARDataset(n, classNames, classNames)
	for i := 0; i < n; i++ {
		rec := b[i*cifar10RecordBytes : (i+1)*cifar10RecordBytes]
		if int(rec[0]) >= len(classNames) {
			return nil, fmt.Errorf("%s: record %d: label %d out of range [0,%d)", name, i, rec[0], len(classNames))
		}
		ds.Fine[i], ds.Coarse[i] = int64(rec[0]), int64(rec[0])
		copy(ds.Pixels[i*cifarImageBytes:], rec[1:])
		ds.Source[i] = fmt.Sprintf("%s record %d", name, i)
	}
	return ds, ds.Validate()
}

// ParseCIFAR100 parses CIFAR-100 binary records (coarse byte + fine byte + 3072 pixel bytes each).
func ParseCIFAR100(b []byte, name string, coarseNames, fineNames []string) (*Dataset, error) {
	n, err := cifarRecordCount(b, name, cifar100RecordBytes, "coarse byte + fine byte + 3072 pixel bytes")
	if err != nil {
		return nil, err
	}
	ds := newCIFARDataset(n, coarseNames, fineNames)
	for i := 0; i < n; i++ {
		rec := b[i*cifar100RecordBytes : (i+1)*cifar100RecordBytes]
		if int(rec[0]) >= len(coarseNames) {
			return nil, fmt.Errorf("%s: record %d: coarse label %d out of range [0,%d)", name, i, rec[0], len(coarseNames))
		}
		if int(rec[1]) >= len(fineNames) {
			return nil, fmt.Errorf("%s: record %d: fine label %d out of range [0,%d)", name, i, rec[1], len(fineNames))
		}
		ds.Coarse[i], ds.Fine[i] = int64(rec[0]), int64(rec[1])
		copy(ds.Pixels[i*cifarImageBytes:], rec[2:])
		ds.Source[i] = fmt.Sprintf("%s record %d", name, i)
	}
	return ds, ds.Validate()
}

func cifarRecordCount(b []byte, name string, recordBytes int, layout string) (int, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("%s: empty file", name)
	}
	if len(b)%recordBytes != 0 {
		return 0, fmt.Errorf("%s: truncated or not a CIFAR binary file: %d bytes is not a multiple of the %d-byte record (%s); %d whole records then %d stray bytes",
			name, len(b), recordBytes, layout, len(b)/recordBytes, len(b)%recordBytes)
	}
	return len(b) / recordBytes, nil
}

func newCIFARDataset(n int, coarseNames, fineNames []string) *Dataset {
	return &Dataset{
		Name: "cifar", N: n, C: 3, H: 32, W: 32,
		Pixels:      make([]uint8, n*cifarImageBytes),
		Coarse:      make([]int64, n),
		Fine:        make([]int64, n),
		Group:       filled(n, -1),
		CoarseNames: append([]string(nil), coarseNames...),
		FineNames:   append([]string(nil), fineNames...),
		Source:      make([]string, n),
	}
}

// readNamesFile reads one class name per line (blank lines skipped). A missing file gives the
// built-in names; a file with the wrong number of names is an error, since labels index into it.
func readNamesFile(path string, builtin []string) ([]string, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return append([]string(nil), builtin...), nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(names) != len(builtin) {
		return nil, fmt.Errorf("%s: %d class names, want %d (one per line)", path, len(names), len(builtin))
	}
	return names, nil
}

// concat joins datasets of the same shape and label names (the batches of one split).
func concat(parts []*Dataset) *Dataset {
	out := &Dataset{C: parts[0].C, H: parts[0].H, W: parts[0].W,
		CoarseNames: parts[0].CoarseNames, FineNames: parts[0].FineNames}
	for _, p := range parts {
		out.N += p.N
		out.Pixels = append(out.Pixels, p.Pixels...)
		out.Coarse = append(out.Coarse, p.Coarse...)
		out.Fine = append(out.Fine, p.Fine...)
		out.Group = append(out.Group, p.Group...)
		out.Source = append(out.Source, p.Source...)
	}
	return out
}
