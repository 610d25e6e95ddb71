package scheduler

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"hpcbot/store"
)

// zipDir is the folder inside LocalDir that holds the zip the bot sends. Its
// name starts with ".hpcbot" like every bookkeeping file of hpcbot.
const zipDir = ".hpcbot-zip"

// zipResults packs files (absolute, inside calc.LocalDir) into
// LocalDir/.hpcbot-zip/<input base>_results.zip, named by their path relative to
// LocalDir, streaming each from disk. It writes a temp file and renames it into
// place, so a crash leaves no half zip under the final name, and a redo simply
// builds it again.
func (s *Scheduler) zipResults(calc store.Calculation, files []string) (string, error) {
	dir := filepath.Join(calc.LocalDir, zipDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	base := strings.TrimSuffix(calc.InputName, filepath.Ext(calc.InputName))
	final := filepath.Join(dir, base+"_results.zip")
	tmp, err := os.CreateTemp(dir, ".tmp-*.zip")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // after the rename: a no-op
	zw := zip.NewWriter(tmp)
	for _, f := range files {
		rel, err := filepath.Rel(calc.LocalDir, f)
		if err != nil {
			tmp.Close()
			return "", err
		}
		if err := addToZip(zw, f, filepath.ToSlash(rel)); err != nil {
			tmp.Close()
			return "", fmt.Errorf("add %s: %w", rel, err)
		}
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	return final, nil
}

func addToZip(zw *zip.Writer, file, name string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	h, err := zip.FileInfoHeader(info)
	if err != nil {
		return err
	}
	h.Name, h.Method = name, zip.Deflate
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	return err
}
