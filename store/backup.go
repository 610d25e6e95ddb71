package store

import (
	"errors"
	"fmt"
	"io"

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
