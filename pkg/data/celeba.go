package data

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CelebA's attribute pair of the robustness literature (Sagawa et al. 2020): hair colour as the
// target, gender as the spurious attribute.
const (
	DefaultCelebATarget   = "Blond_Hair"
	DefaultCelebASpurious = "Male"
)

// LoadCelebA reads one split ("train", "val" or "test") of CelebA as released: <dir>/list_attr_celeba.txt
// (a count line, a line of the 40 attribute names, then "<image> v1 ... v40" with v = 1 or -1),
// <dir>/list_eval_partition.txt ("<image> 0|1|2", 0/1/2 = train/val/test) and the aligned images in
// <dir>/img_align_celeba/. Coarse = target attribute (0 absent, 1 present); group = 2*coarse +
// spurious attribute (1 when present).
func LoadCelebA(dir, split, target, spurious string, o ImageOptions) (*Dataset, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("celeba: %w", err)
	}
	partPath := filepath.Join(dir, "list_eval_partition.txt")
	partition, err := readCelebAPartition(partPath)
	if err != nil {
		return nil, fmt.Errorf("celeba: %w", err)
	}
	want := map[string]string{"train": "0", "val": "1", "test": "2"}[split]
	if want == "" {
		return nil, fmt.Errorf("celeba: split %q: want train, val or test", split)
	}
	attrPath := filepath.Join(dir, "list_attr_celeba.txt")
	f, err := os.Open(attrPath)
	if err != nil {
		return nil, fmt.Errorf("celeba: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	next := func() (string, bool) {
		for sc.Scan() {
			line++
			if t := strings.TrimSpace(sc.Text()); t != "" {
				return t, true
			}
		}
		return "", false
	}
	countLine, ok := next()
	count, err := strconv.Atoi(countLine)
	if !ok || err != nil {
		return nil, fmt.Errorf("celeba: %s:%d: want the image count, got %q", attrPath, line, countLine)
	}
	namesLine, _ := next()
	names := strings.Fields(namesLine)
	ti, si := -1, -1
	for i, n := range names {
		if n == target {
			ti = i
		}
		if n == spurious {
			si = i
		}
	}
	if ti < 0 || si < 0 {
		return nil, fmt.Errorf("celeba: %s:%d: data.target %q or data.spurious %q is not an attribute (have %s)", attrPath, line, target, spurious, strings.Join(names, " "))
	}
	var jobs []imageJob
	var coarse, group []int64
	rows := 0
	for {
		text, ok := next()
		if !ok {
			break
		}
		rows++
		fields := strings.Fields(text)
		if len(fields) != len(names)+1 {
			return nil, fmt.Errorf("celeba: %s:%d: %d fields, want an image name and %d attributes", attrPath, line, len(fields), len(names))
		}
		img := fields[0]
		p, listed := partition[img]
		if !listed {
			return nil, fmt.Errorf("celeba: %s:%d: image %s is not in %s", attrPath, line, img, partPath)
		}
		t, err1 := celebAFlag(fields[ti+1])
		s, err2 := celebAFlag(fields[si+1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("celeba: %s:%d: attributes must be 1 or -1, got %s=%q %s=%q", attrPath, line, target, fields[ti+1], spurious, fields[si+1])
		}
		if p != want {
			continue
		}
		if !filepath.IsLocal(img) {
			return nil, fmt.Errorf("celeba: %s:%d: image name %q must be a file name inside img_align_celeba", attrPath, line, img)
		}
		path := filepath.Join(dir, "img_align_celeba", img)
		source := fmt.Sprintf("%s:%d: image %s", attrPath, line, path)
		jobs = append(jobs, imageJob{source: source, read: func() ([]byte, error) { return os.ReadFile(path) }})
		coarse = append(coarse, t)
		group = append(group, 2*t+s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("celeba: %s: %w", attrPath, err)
	}
	if rows != count {
		return nil, fmt.Errorf("celeba: %s: the first line says %d images, the file lists %d (truncated download?)", attrPath, count, rows)
	}
	d, err := datasetFromJobs("celeba-"+split, jobs, coarse, []string{"not_" + target, target}, o)
	if err != nil {
		return nil, err
	}
	d.Fine = filled(d.N, -1) // CelebA has no finer labels than its attributes
	d.FineNames = nil
	d.Group = group
	return d, d.Validate()
}

// celebAFlag reads an attribute value: 1 present, -1 absent.
func celebAFlag(v string) (int64, error) {
	switch v {
	case "1":
		return 1, nil
	case "-1":
		return 0, nil
	}
	return 0, fmt.Errorf("%q", v)
}

// readCelebAPartition reads list_eval_partition.txt: image name -> "0", "1" or "2".
func readCelebAPartition(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 || (fields[1] != "0" && fields[1] != "1" && fields[1] != "2") {
			return nil, fmt.Errorf("%s:%d: want \"<image> 0|1|2\", got %q", path, line, sc.Text())
		}
		out[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
