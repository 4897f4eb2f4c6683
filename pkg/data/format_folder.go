package data

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// isImageFile reports whether a file name has an extension the image readers decode.
func isImageFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// FolderOptions configures LoadImageFolder and LoadImageTarGz.
type FolderOptions struct {
	ImageOptions
	// Classes fixes the class names and their order. Empty means the class folders found, sorted by
	// name; set it so that a train and a test split agree on label numbers even if one lacks a class.
	Classes []string
	// PerClassLimit keeps only the first k images (by sorted path) of each class; 0 keeps all.
	PerClassLimit int
}

// LoadImageFolder reads <root>/<split>/<class>/*.{jpg,jpeg,png} (split "" reads <root>/<class>/...).
// Classes are sorted by name, images by path, so the result does not depend on the file system's
// order. Coarse == Fine == the class folder's index.
func LoadImageFolder(root, split string, o FolderOptions) (*Dataset, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("image folder %s: %w", root, err)
	}
	dir := filepath.Join(root, split)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	classes := o.Classes
	if len(classes) == 0 {
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				classes = append(classes, e.Name())
			}
		}
		sort.Strings(classes)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("image folder %s: no class subfolders (want %s/<class>/*.jpg)", dir, dir)
	}
	var jobs []imageJob
	var labels []int64
	for ci, class := range classes {
		classDir := filepath.Join(dir, class)
		files, err := os.ReadDir(classDir)
		if err != nil {
			return nil, fmt.Errorf("image folder: class %q: %w", class, err)
		}
		var paths []string
		for _, f := range files {
			if !f.IsDir() && isImageFile(f.Name()) {
				paths = append(paths, filepath.Join(classDir, f.Name()))
			}
		}
		sort.Strings(paths)
		if o.PerClassLimit > 0 && len(paths) > o.PerClassLimit {
			paths = paths[:o.PerClassLimit]
		}
		for _, p := range paths {
			jobs = append(jobs, imageJob{source: p, read: func() ([]byte, error) { return os.ReadFile(p) }})
			labels = append(labels, int64(ci))
		}
	}
	return datasetFromJobs("imagefolder-"+split, jobs, labels, classes, o.ImageOptions)
}

func datasetFromJobs(name string, jobs []imageJob, labels []int64, classes []string, o ImageOptions) (*Dataset, error) {
	pixels, err := decodeAll(jobs, o)
	if err != nil {
		return nil, err
	}
	ds := &Dataset{
		Name: name, N: len(jobs), C: o.C, H: o.H, W: o.W,
		Pixels:      pixels,
		Coarse:      append([]int64(nil), labels...),
		Fine:        labels,
		Group:       filled(len(jobs), -1),
		CoarseNames: append([]string(nil), classes...),
		FineNames:   append([]string(nil), classes...),
		Source:      make([]string, len(jobs)),
	}
	for i, j := range jobs {
		ds.Source[i] = j.source
	}
	return ds, ds.Validate()
}
