package plot

import (
	"fmt"
	"os"
	"path/filepath"
)

// atomicFile is a temporary file renamed into place on commit.
type atomicFile struct {
	*os.File
	path string
}

func createAtomic(path string) (*atomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".plot-*.png")
	if err != nil {
		return nil, fmt.Errorf("plot: write %s: %w", path, err)
	}
	return &atomicFile{File: f, path: path}, nil
}

func (f *atomicFile) abort() {
	f.Close()
	os.Remove(f.Name())
}

func (f *atomicFile) commit() error {
	if err := f.Chmod(0o644); err != nil {
		f.abort()
		return fmt.Errorf("plot: write %s: %w", f.path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("plot: write %s: %w", f.path, err)
	}
	if err := os.Rename(f.Name(), f.path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("plot: write %s: %w", f.path, err)
	}
	return nil
}
