package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A running daemon holds the store's file lock, so no other process can open
// the file, not even read-only. `hpcbot backup` therefore asks the daemon: it
// serves consistent copies on a unix socket next to the store file
// (SocketPath), readable only by the same user. The stream is a header
// (backupMagic, then the copy's size as 8 bytes big-endian) followed by the
// copy, so a client detects a truncated stream.

var backupMagic = []byte("HPCBOTB1")

// SocketPath is where the daemon holding the store at storePath answers
// backup requests.
func SocketPath(storePath string) string { return storePath + ".sock" }

// ServeBackups answers backup requests from other processes on
// SocketPath(s.Path()) until ctx is done; then it closes the socket, aborts
// copies in flight and returns nil. Only connections from the same user (or
// root) are served, where the system says who connected (Linux). Cancel ctx
// and wait for ServeBackups to return before closing the store.
func (s *Store) ServeBackups(ctx context.Context) error {
	sock := SocketPath(s.path)
	// We hold the store's lock, so a socket file left here is a dead daemon's.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("serve backups: %w", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("serve backups on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("serve backups: %w", err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("serve backups on %s: %w", sock, err)
		}
		mu.Lock()
		conns[conn] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, conn)
				mu.Unlock()
				conn.Close()
			}()
			if !samePeerUser(conn) {
				return
			}
			_ = s.db.View(func(tx *bolt.Tx) error {
				hdr := append(append([]byte(nil), backupMagic...), u64(uint64(tx.Size()))...)
				if _, err := conn.Write(hdr); err != nil {
					return err
				}
				_, err := tx.WriteTo(conn)
				return err
			})
		}()
	}
}

// BackupPath writes a consistent copy of the store at storePath to dest
// (atomically: a temporary file, synced, checked, renamed). It opens the
// store read-only when no other process holds it; when the daemon holds it,
// it asks the daemon over SocketPath(storePath). The copy passes bbolt's
// consistency check before it replaces dest.
func BackupPath(storePath, dest string, lockTimeout time.Duration) (int64, error) {
	if lockTimeout <= 0 {
		lockTimeout = 200 * time.Millisecond
	}
	s, err := Open(storePath, Options{ReadOnly: true, AllowOldSchema: true, LockTimeout: lockTimeout})
	if err == nil {
		defer s.Close()
		return s.BackupFile(dest)
	}
	if !errors.Is(err, ErrLocked) {
		return 0, err
	}
	n, rerr := backupFromDaemon(storePath, dest)
	if rerr != nil {
		return 0, fmt.Errorf("store %s is in use by another hpcbot process, and asking it for a backup failed: %w", storePath, rerr)
	}
	return n, nil
}

func backupFromDaemon(storePath, dest string) (int64, error) {
	sock := SocketPath(storePath)
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", sock, err)
	}
	defer conn.Close()
	hdr := make([]byte, len(backupMagic)+8)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		return 0, fmt.Errorf("read backup header from %s: %w", sock, err)
	}
	if string(hdr[:len(backupMagic)]) != string(backupMagic) {
		return 0, fmt.Errorf("%s does not speak the backup protocol", sock)
	}
	size := int64(binary.BigEndian.Uint64(hdr[len(backupMagic):]))
	return writeChecked(dest, func(w io.Writer) (int64, error) {
		n, err := io.CopyN(w, conn, size)
		if err != nil {
			return n, fmt.Errorf("backup stream from %s ended after %d of %d bytes: %w", sock, n, size, err)
		}
		return n, nil
	})
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
