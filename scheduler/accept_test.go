package scheduler

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hpcbot/store"
)

// writeBody is a Write for AcceptRequest that writes body as the bot's
// download does (a temporary file renamed into place), world-readable, so that
// the tests see Accept set the modes; it counts its calls.
func writeBody(body string, calls *atomic.Int32) func(dir, name string) error {
	return func(dir, name string) error {
		calls.Add(1)
		tmp := filepath.Join(dir, ".download-test")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(dir, name))
	}
}

// acceptReq is the request the bot makes for a file sent in update upd.
func (b *bed) acceptReq(s *Scheduler, upd int64, name, body, caption string, calls *atomic.Int32) AcceptRequest {
	b.t.Helper()
	r, err := s.Route(b.t.Context(), name, caption)
	if err != nil {
		b.t.Fatalf("route %s: %v", name, err)
	}
	return AcceptRequest{UserID: b.user.ID, TelegramID: 501, ChatID: 501, MessageID: int(upd), UpdateID: upd,
		At: time.Unix(1732640000, 0), FileName: name, Caption: caption, Route: r, Window: 24 * time.Hour,
		Limit: 1 << 20, Write: writeBody(body, calls)}
}

// dirEntries lists download_path.
func (b *bed) dirEntries() []string {
	b.t.Helper()
	ents, err := os.ReadDir(b.cfg.DownloadPath)
	if err != nil {
		b.t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() == IncomingDir {
			// Accept's private write folders: each is gone when Accept returns.
			if left, err := os.ReadDir(filepath.Join(b.cfg.DownloadPath, IncomingDir)); err != nil || len(left) != 0 {
				b.t.Fatalf("%s keeps %v (%v) after Accept returned", IncomingDir, left, err)
			}
			continue
		}
		names = append(names, e.Name())
	}
	return names
}

// The same update accepted again, one after the other (the handler ran again
// after a crash) or at once, gives one calculation and writes the input once
// it exists; a crash after the input was written and before the record left
// the input in the folder, which the next Accept of the update writes again
// in place. The calculation runs to the end.
func TestAcceptIdempotentPerUpdate(t *testing.T) {
	b := newBed(t)
	s := b.start()
	var calls atomic.Int32
	req := b.acceptReq(s, 9001, "a.sh", "echo a > a.out\n", "sh {}", &calls)

	// What a crash between the download and the record leaves behind.
	folder := FolderName(b.user.ID, 9001, "a.sh", req.At)
	if err := os.MkdirAll(s.LocalDir(folder), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.LocalDir(folder), "a.sh"), []byte("echo a > a.out\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	first, err := s.Accept(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.Folder != folder || first.LocalDir != s.LocalDir(folder) || first.UpdateID != 9001 ||
		first.Caption == nil || *first.Caption != "sh {}" || first.Program != "sh" || first.TelegramID != 501 {
		t.Fatalf("calculation %+v", first)
	}
	var wg sync.WaitGroup
	got := make([]store.Calculation, 4)
	errs := make([]error, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.Accept(t.Context(), req)
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i].ID != first.ID {
			t.Fatalf("Accept again: calc %d, %v; want calc %d", got[i].ID, errs[i], first.ID)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the input was written %d times, want once", n)
	}
	all, err := b.st.CalcsOfUser(b.user.ID, time.Time{}, 0)
	if err != nil || len(all) != 1 {
		t.Fatalf("%d calculations (%v), want 1", len(all), err)
	}
	if ents := b.dirEntries(); len(ents) != 1 || ents[0] != folder {
		t.Fatalf("download_path holds %v, want only %s", ents, folder)
	}
	if d := b.waitState(first.ID, store.StateNotified, store.StateError); d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}

	// Another update is another calculation, in its own folder, even for the
	// same name in the same second.
	other, err := s.Accept(t.Context(), b.acceptReq(s, 9002, "a.sh", "echo b > a.out\n", "", &calls))
	if err != nil || other.ID == first.ID || other.Folder == first.Folder {
		t.Fatalf("another update: %+v, %v", other, err)
	}
	if d := b.waitState(other.ID, store.StateNotified, store.StateError); d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}
}

// The input is written 0600 in a 0700 folder, whatever modes the writer used
// and whatever mode a folder left over from a crashed attempt had.
func TestAcceptModes(t *testing.T) {
	b := newBed(t)
	s := b.start()
	var calls atomic.Int32
	req := b.acceptReq(s, 77, "m.sh", "echo m > m.out\n", "", &calls)
	left := s.LocalDir(FolderName(b.user.ID, 77, "m.sh", req.At))
	if err := os.MkdirAll(left, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := s.Accept(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{c.LocalDir: 0o700 | os.ModeDir, filepath.Join(c.LocalDir, "m.sh"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	if data, err := os.ReadFile(filepath.Join(c.LocalDir, "m.sh")); err != nil || string(data) != "echo m > m.out\n" {
		t.Fatalf("input %q, %v", data, err)
	}
}

// When no calculation comes of a request (the writer fails half way, the
// file is above the limit, the quota is used up, the user is blocked), there
// is no record and no folder, and the update can be accepted later.
func TestAcceptLeavesNothingWhenRefused(t *testing.T) {
	b := newBed(t)
	s := b.start()
	var calls atomic.Int32
	broken := errors.New("connection reset")

	req := b.acceptReq(s, 1, "f.sh", "", "", &calls)
	req.Write = func(dir, name string) error {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("echo half"), 0o600); err != nil {
			return err
		}
		return broken
	}
	if _, err := s.Accept(t.Context(), req); !errors.Is(err, broken) {
		t.Fatalf("failing writer: %v, want its error", err)
	}

	big := b.acceptReq(s, 2, "g.sh", "echo too big\n", "", &calls)
	big.Limit = 4
	if _, err := s.Accept(t.Context(), big); err == nil {
		t.Fatal("an input above the limit was accepted")
	}

	if _, err := b.st.UpdateUser(b.user.ID, func(_ *store.Tx, u *store.User) error { u.Limit = 0; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(t.Context(), b.acceptReq(s, 3, "q.sh", "echo q\n", "", &calls)); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("quota used up: %v, want ErrQuotaExceeded", err)
	}
	if _, err := b.st.UpdateUser(b.user.ID, func(_ *store.Tx, u *store.User) error { u.Limit, u.Blocked = 10, true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(t.Context(), b.acceptReq(s, 4, "k.sh", "echo k\n", "", &calls)); !errors.Is(err, store.ErrBlocked) {
		t.Fatalf("blocked: %v, want ErrBlocked", err)
	}
	unknown := b.acceptReq(s, 5, "u.sh", "echo u\n", "", &calls)
	unknown.Route.Cluster = "gone"
	if _, err := s.Accept(t.Context(), unknown); !errors.Is(err, ErrUnknownCluster) {
		t.Fatalf("unknown cluster: %v, want ErrUnknownCluster", err)
	}
	bad := b.acceptReq(s, 6, "b.sh", "echo b\n", "", &calls)
	bad.FileName = "../b.sh"
	if _, err := s.Accept(t.Context(), bad); err == nil {
		t.Fatal("a path was accepted as a file name")
	}

	if all, _ := b.st.CalcsOfUser(b.user.ID, time.Time{}, 0); len(all) != 0 {
		t.Fatalf("%d calculations were created", len(all))
	}
	if ents := b.dirEntries(); len(ents) != 0 {
		t.Fatalf("download_path holds %v, want nothing", ents)
	}

	// The failed update, handled again once the user may: one calculation.
	if _, err := b.st.UpdateUser(b.user.ID, func(_ *store.Tx, u *store.User) error { u.Blocked = false; return nil }); err != nil {
		t.Fatal(err)
	}
	c, err := s.Accept(t.Context(), b.acceptReq(s, 1, "f.sh", "echo f > f.out\n", "", &calls))
	if err != nil {
		t.Fatal(err)
	}
	if d := b.waitState(c.ID, store.StateNotified, store.StateError); d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}
}

// A file routed to a drained cluster (no failover) is accepted all the same
// and waits there; after the undrain it runs.
func TestAcceptDrainedRoute(t *testing.T) {
	b := newBed(t, withClusters("first", "second"))
	off := false
	b.cfg.Clusters[0].Failover = &off
	s := b.start()
	if err := s.Drain("first", "new disks", "admin"); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	req := b.acceptReq(s, 31, "d.sh", "echo d > d.out\n", "", &calls)
	if !req.Route.Drained || req.Route.Cluster != "first" {
		t.Fatalf("route %+v", req.Route)
	}
	c, err := s.Accept(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if n := b.waitDrainedNotice(c.ID); n.Reason != "new disks" {
		t.Fatalf("reason %q", n.Reason)
	}
	if got, _ := b.st.Calc(c.ID); got.State != store.StateReceived || got.Cluster != "first" {
		t.Fatalf("calc on %s in %s", got.Cluster, got.State)
	}
	if err := s.Undrain("first"); err != nil {
		t.Fatal(err)
	}
	if d := b.waitState(c.ID, store.StateNotified, store.StateError); d.State != store.StateNotified || d.Cluster != "first" {
		t.Fatalf("on %s: %s: %s", d.Cluster, history(d), d.Error)
	}
}

// A download killed halfway (kill -9) leaves its temporary file in Accept's
// private write folder, never in the calculation's: the next Accept of the
// update stages nothing but the input, and an Accept that makes no
// calculation leaves no folder. Debris older than a day is swept.
func TestAcceptCrashDebrisStaysOut(t *testing.T) {
	b := newBed(t)
	s := b.start()
	var calls atomic.Int32
	crashed := filepath.Join(b.cfg.DownloadPath, IncomingDir, "accept-crashed")
	if err := os.MkdirAll(crashed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed, ".download-123456"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := s.Accept(t.Context(), b.acceptReq(s, 9101, "a.sh", "ls -A > ls.out\n", "sh {}", &calls))
	if err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(c.LocalDir); err != nil || len(ents) != 1 || ents[0].Name() != "a.sh" {
		t.Fatalf("the calculation's folder holds %v (%v), want only a.sh", ents, err)
	}
	end := b.waitState(c.ID, store.StateNotified, store.StateError)
	if end.State != store.StateNotified {
		t.Fatalf("calc ended %s", end.State)
	}
	ls, err := os.ReadFile(filepath.Join(c.LocalDir, "ls.out"))
	if err != nil || strings.Contains(string(ls), "download") {
		t.Fatalf("the job's folder on the cluster lists %q (%v): debris was staged", ls, err)
	}
	if _, err := os.Stat(crashed); err != nil {
		t.Fatalf("fresh debris removed (a write may be under way): %v", err)
	}

	old := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(crashed, old, old); err != nil {
		t.Fatal(err)
	}
	req := b.acceptReq(s, 9102, "b.sh", "true\n", "sh {}", &calls)
	req.Write = func(dir, name string) error {
		if err := os.WriteFile(filepath.Join(dir, ".download-7"), []byte("part"), 0o600); err != nil {
			return err
		}
		return os.ErrDeadlineExceeded // the download broke off
	}
	if _, err := s.Accept(t.Context(), req); err == nil {
		t.Fatal("Accept of a failed download made a calculation")
	}
	if _, err := os.Stat(crashed); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("debris older than a day kept: %v", err)
	}
	if got := b.dirEntries(); len(got) != 1 || got[0] != filepath.Base(c.LocalDir) {
		t.Errorf("download_path holds %v, want only %s", got, filepath.Base(c.LocalDir))
	}
}
