// Package atomicfile writes files so that readers see either the old or the
// complete new content, never a partial file.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write creates or replaces path with what fn writes. The data goes to a
// temporary file in the same directory (rename is only atomic within one
// file system), is fsynced, renamed over path, and the directory is fsynced
// so the rename itself survives a crash. On error path is left untouched.
func Write(path string, perm os.FileMode, fn func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = fn(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	// CreateTemp uses 0600; give the final file the requested mode.
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmpName, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		serr := d.Sync()
		d.Close()
		// Some file systems cannot fsync directories; the data is already
		// durable, so only report real I/O errors.
		if serr != nil && !errors.Is(serr, os.ErrInvalid) && !isUnsupported(serr) {
			return fmt.Errorf("fsync directory %s: %w", dir, serr)
		}
	}
	return nil
}
