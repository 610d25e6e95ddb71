package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole store to w from one read
// transaction (bbolt's Tx.WriteTo): writers go on meanwhile and the copy shows
// the state at its start. It returns the number of bytes written.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup store %s: %w", s.path, err)
	}
	return n, nil
}

// BackupFile writes a consistent copy of the store to path: into a temporary
// file in the same folder, synced, checked with bbolt's consistency check,
// then renamed over path, so that path holds either the old file or the
// complete new copy, never a partial one.
func (s *Store) BackupFile(path string) (int64, error) {
	return writeChecked(path, s.Backup)
}

// Check runs bbolt's consistency check over the whole file and returns every
// problem it finds (nil when the file is sound).
func (s *Store) Check() error {
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("store %s failed the consistency check: %w", s.path, errors.Join(errs...))
	}
	return nil
}

// writeChecked writes a store copy through fill into a temporary file next
// to dest, syncs it, runs bbolt's consistency check on it and renames it to dest.
func writeChecked(dest string, fill func(io.Writer) (int64, error)) (int64, error) {
	dir := filepath.Dir(dest)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("backup to %s: %w", dest, err)
	}
	tmp := f.Name()
	fail := func(err error) (int64, error) {
		f.Close()
		os.Remove(tmp)
		return 0, fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	n, err := fill(f)
	if err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := checkFile(tmp); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("backup to %s: %w", dest, err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the rename itself durable; not every filesystem supports it.
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}

// checkFile runs bbolt's consistency check on a closed bbolt file.
func checkFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("open copy: %w", err)
	}
	defer db.Close()
	var errs []error
	err = db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("copy failed the consistency check: %w", errors.Join(errs...))
	}
	return nil
}
