package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
