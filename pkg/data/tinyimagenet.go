package data

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LoadTinyImageNet reads Tiny ImageNet (tiny-imagenet-200.zip, extracted) in its published layout:
// <dir>/wnids.txt (the 200 WordNet ids), <dir>/train/<wnid>/images/*.JPEG, and
// <dir>/val/val_annotations.txt ("<file>\t<wnid>\t<box>") with <dir>/val/images/<file>. The test
// images carry no labels, so split "test" is the official validation set, as is customary; "train"
// is the training set. Fine = Coarse = the wnid's index in sorted order (the order of torchvision's
// ImageFolder); a fine-to-coarse label map (data.label_map, wnid: coarse lines) sets the coarse
// classes.
func LoadTinyImageNet(dir, split string, o ImageOptions) (*Dataset, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("tinyimagenet: %w", err)
	}
	wnidsPath := filepath.Join(dir, "wnids.txt")
	raw, err := os.ReadFile(wnidsPath)
	if err != nil {
		return nil, fmt.Errorf("tinyimagenet: %w", err)
	}
	wnids := strings.Fields(string(raw))
	if len(wnids) == 0 {
		return nil, fmt.Errorf("tinyimagenet: %s lists no classes", wnidsPath)
	}
	sort.Strings(wnids)
	index := make(map[string]int64, len(wnids))
	for i, w := range wnids {
		if _, dup := index[w]; dup {
			return nil, fmt.Errorf("tinyimagenet: %s lists %s twice", wnidsPath, w)
		}
		index[w] = int64(i)
	}
	var jobs []imageJob
	var labels []int64
	add := func(path, source string, label int64) {
		jobs = append(jobs, imageJob{source: source, read: func() ([]byte, error) { return os.ReadFile(path) }})
		labels = append(labels, label)
	}
	switch split {
	case "train":
		for i, w := range wnids {
			imgDir := filepath.Join(dir, "train", w, "images")
			entries, err := os.ReadDir(imgDir)
			if err != nil {
				return nil, fmt.Errorf("tinyimagenet: class %s of %s: %w", w, wnidsPath, err)
			}
			var names []string
			for _, e := range entries {
				if !e.IsDir() && isImageFile(e.Name()) {
					names = append(names, e.Name())
				}
			}
			sort.Strings(names)
			for _, n := range names {
				p := filepath.Join(imgDir, n)
				add(p, p, int64(i))
			}
		}
	case "test":
		annPath := filepath.Join(dir, "val", "val_annotations.txt")
		f, err := os.Open(annPath)
		if err != nil {
			return nil, fmt.Errorf("tinyimagenet: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 {
				continue
			}
			if len(fields) < 2 || !filepath.IsLocal(fields[0]) {
				return nil, fmt.Errorf("tinyimagenet: %s:%d: want \"<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>\", got %q", annPath, line, sc.Text())
			}
			label, ok := index[fields[1]]
			if !ok {
				return nil, fmt.Errorf("tinyimagenet: %s:%d: class %s is not in %s", annPath, line, fields[1], wnidsPath)
			}
			p := filepath.Join(dir, "val", "images", fields[0])
			add(p, fmt.Sprintf("%s:%d: image %s", annPath, line, p), label)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("tinyimagenet: %s: %w", annPath, err)
		}
	default:
		return nil, fmt.Errorf("tinyimagenet: split %q: want train or test (the official val set serves as test)", split)
	}
	return datasetFromJobs("tinyimagenet-"+split, jobs, labels, wnids, o)
}
