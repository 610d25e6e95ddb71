package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBackupDuringWrites takes backups while writers run and checks that every
// copy passes bbolt's consistency check and holds a prefix of the writes: the
// calculations 1..n and, with each, its index entries and its event.
func TestBackupDuringWrites(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 1<<30)
	const writers, perWriter = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				c, err := s.CreateCalculation(Calculation{UserID: u.ID, UpdateID: int64(w*perWriter + i + 1)}, window, clk.t)
				if err != nil {
					errs <- err
					return
				}
				if _, err := s.Transition(c.ID, StateStaged, "", nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	dir := t.TempDir()
	var copies []string
	for i := 0; ; i++ {
		path := filepath.Join(dir, fmt.Sprintf("copy%d.db", i))
		if _, err := s.BackupFile(path); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, path)
		if i >= 3 && closed(done) {
			break
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup = %d, %v (buffer %d)", n, err, buf.Len())
	}
	final := filepath.Join(dir, "final.db")
	if err := os.WriteFile(final, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	copies = append(copies, final)

	for _, path := range copies {
		c, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("open copy %s: %v", path, err)
		}
		if err := c.Check(); err != nil {
			t.Errorf("copy %s: %v", path, err)
		}
		calcs, err := c.CalcsOfUser(u.ID, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		staged, _ := c.CalcsByState(StateStaged)
		received, _ := c.CalcsByState(StateReceived)
		events, _ := c.Events(time.Time{}, 0)
		n := len(calcs)
		// A prefix: ids 1..n, each in exactly one state index, one event each.
		for i, calc := range calcs {
			if calc.ID != uint64(n-i) {
				t.Errorf("copy %s: calc ids are not 1..%d: position %d holds %d", path, n, i, calc.ID)
				break
			}
		}
		if len(staged)+len(received) != n || len(events) != n {
			t.Errorf("copy %s: %d calcs, %d staged + %d received, %d events", path, n, len(staged), len(received), len(events))
		}
		c.Close()
		if path == final && n != writers*perWriter {
			t.Errorf("final copy has %d calcs, want %d", n, writers*perWriter)
		}
	}
	if fi, err := os.Stat(copies[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(tmps) != 0 {
		t.Errorf("temporary files left behind: %v", tmps)
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestBackupFileErrors(t *testing.T) {
	s, _ := openTest(t)
	if _, err := s.BackupFile(filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")); err == nil {
		t.Fatal("backup into a missing folder succeeded")
	}
}

// TestBackupFromRunningDaemon: while one Store holds the file (as `hpcbot run`
// does) and writes, BackupPath cannot open it and gets its copy over the socket.
func TestBackupFromRunningDaemon(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u := newUser(t, s, 1<<30)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeBackups(ctx) }()

	stopWriting := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				wrote <- nil
				return
			default:
			}
			if _, err := s.CreateCalculation(Calculation{UserID: u.ID}, window, time.Now()); err != nil {
				wrote <- err
				return
			}
		}
	}()

	dest := filepath.Join(dir, "copy.db")
	var n int64
	// The socket appears asynchronously; a refused dial means "not yet".
	for {
		n, err = BackupPath(path, dest, 10*time.Millisecond)
		if err == nil || !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		runtime.Gosched()
	}
	close(stopWriting)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err != nil || n == 0 {
		t.Fatalf("BackupPath while the store is held = %d, %v", n, err)
	}
	c, err := Open(dest, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Error(err)
	}
	if got, err := c.User(u.ID); err != nil || got.Limit != 1<<30 {
		t.Errorf("user in the copy = %+v, %v", got, err)
	}
	c.Close()

	cancel()
	if err := <-served; err != nil {
		t.Fatalf("ServeBackups = %v", err)
	}
	if _, err := os.Stat(SocketPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	// Without a daemon answering, the error says the store is in use.
	if _, err := BackupPath(path, dest, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "in use by another hpcbot process") {
		t.Errorf("BackupPath with nobody serving = %v", err)
	}
}

func TestBackupPathNotHeld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "idle.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := newUser(t, s, 3)
	s.Close()
	dest := filepath.Join(dir, "copy.db")
	if _, err := BackupPath(path, dest, 0); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dest, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.User(u.ID); err != nil || got.Limit != 3 {
		t.Fatalf("user in the copy = %+v, %v", got, err)
	}
}
