package scheduler

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hpcbot/store"
)

// acceptDone accepts a file in update upd and waits until it was delivered.
func (b *bed) acceptDone(s *Scheduler, upd int64, name, body, caption string) store.Calculation {
	b.t.Helper()
	var calls atomic.Int32
	c, err := s.Accept(b.t.Context(), b.acceptReq(s, upd, name, body, caption, &calls))
	if err != nil {
		b.t.Fatal(err)
	}
	d := b.waitState(c.ID, store.StateNotified, store.StateError)
	if d.State != store.StateNotified {
		b.t.Fatalf("%s: %s", history(d), d.Error)
	}
	return d
}

// Run again makes a new calculation of the same input and caption for the same
// user, in a folder of its own, which runs; the same press (one after the
// other, or at once) gives that calculation again, another press another one.
func TestRunAgain(t *testing.T) {
	b := newBed(t)
	s := b.start()
	body := "echo again >> r.out\n"
	old := b.acceptDone(s, 700, "r.sh", body, "sh -e {}")

	again, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, By: 502, Press: "0", Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == old.ID || again.UserID != old.UserID || again.RunAgainOf != old.ID || again.TelegramID != old.TelegramID ||
		again.ChatID != old.ChatID || again.InputName != "r.sh" || again.Caption == nil || *again.Caption != "sh -e {}" ||
		!slices.Equal(again.Argv, old.Argv) || again.Cluster != "loc" || again.UpdateID != 0 {
		t.Fatalf("run again of %+v gave %+v", old, again)
	}
	if again.Folder == old.Folder || filepath.Dir(again.LocalDir) != filepath.Dir(old.LocalDir) {
		t.Fatalf("folder %s, the old one %s", again.LocalDir, old.LocalDir)
	}
	in := filepath.Join(again.LocalDir, "r.sh")
	if data, err := os.ReadFile(in); err != nil || string(data) != body {
		t.Fatalf("input %q, %v", data, err)
	}
	if fi, err := os.Stat(in); err != nil || fi.Mode() != 0o600 {
		t.Fatalf("input mode %v, %v", fi.Mode(), err)
	}

	var wg sync.WaitGroup
	same := make([]store.Calculation, 4)
	errs := make([]error, 4)
	for i := range same {
		wg.Add(1)
		go func() {
			defer wg.Done()
			same[i], errs[i] = s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, By: 502, Press: "0", Window: time.Hour})
		}()
	}
	wg.Wait()
	for i := range same {
		if errs[i] != nil || same[i].ID != again.ID {
			t.Fatalf("the same press again: calc %d, %v; want %d", same[i].ID, errs[i], again.ID)
		}
	}
	if d := b.waitState(again.ID, store.StateNotified, store.StateError); d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}

	next, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, By: 502, Press: "1", Window: time.Hour})
	if err != nil || next.ID == again.ID || next.Folder == again.Folder {
		t.Fatalf("another press: %+v, %v", next, err)
	}
	if d := b.waitState(next.ID, store.StateNotified, store.StateError); d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}
	if all, _ := b.st.CalcsOfUser(b.user.ID, time.Time{}, 0); len(all) != 3 {
		t.Fatalf("%d calculations, want 3", len(all))
	}
	if ents := b.dirEntries(); len(ents) != 3 {
		t.Fatalf("download_path holds %v, want 3 folders", ents)
	}
}

// A press whose first attempt was cut short after the input was copied and
// before the record was created finds its folder again: no second folder.
func TestRunAgainAfterCrash(t *testing.T) {
	b := newBed(t)
	s := b.start()
	old := b.acceptDone(s, 710, "c.sh", "echo c > c.out\n", "")
	key := "again/" + strconv.FormatUint(old.ID, 10) + "/7"
	folder := FolderName(b.user.ID, keyNumber(key), "c.sh", time.Unix(1732640100, 0))
	if err := b.st.SetValue(acceptKey(key), folder); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.LocalDir(folder), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.LocalDir(folder), "c.sh"), []byte("echo c > c.out\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, By: 1, Press: "7", Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if c.Folder != folder {
		t.Fatalf("folder %s, want the one the first attempt chose, %s", c.Folder, folder)
	}
	if ents := b.dirEntries(); len(ents) != 2 {
		t.Fatalf("download_path holds %v, want 2 folders", ents)
	}
	if _, ok, _ := b.st.Value(acceptKey(key)); ok {
		t.Fatal("the folder reservation outlived the calculation")
	}
	if d := b.waitState(c.ID, store.StateNotified, store.StateError); d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}
}

// Run again of an unknown calculation, of one whose input housekeeping
// removed, or over the quota makes nothing, with an error that says which;
// a press already made still answers with its calculation.
func TestRunAgainRefused(t *testing.T) {
	b := newBed(t)
	s := b.start()
	old := b.acceptDone(s, 720, "g.sh", "echo g > g.out\n", "")
	if _, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID + 100, Window: time.Hour}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown calculation: %v, want ErrNotFound", err)
	}

	if _, err := b.st.UpdateUser(b.user.ID, func(_ *store.Tx, u *store.User) error { u.Limit = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, Press: "q", Window: time.Hour}); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("over the quota: %v, want ErrQuotaExceeded", err)
	}
	if _, err := b.st.UpdateUser(b.user.ID, func(_ *store.Tx, u *store.User) error { u.Limit = 10; return nil }); err != nil {
		t.Fatal(err)
	}
	made, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, Press: "x", Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b.waitState(made.ID, store.StateNotified, store.StateError)

	// What housekeeping does once the calculation ended longer than retention ago.
	if err := os.RemoveAll(old.LocalDir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, Press: "y", Window: time.Hour}); !errors.Is(err, ErrInputGone) {
		t.Fatalf("input removed: %v, want ErrInputGone", err)
	}
	if c, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, Press: "x", Window: time.Hour}); err != nil || c.ID != made.ID {
		t.Fatalf("the press made before: calc %d, %v; want %d", c.ID, err, made.ID)
	}
	if all, _ := b.st.CalcsOfUser(b.user.ID, time.Time{}, 0); len(all) != 2 {
		t.Fatalf("%d calculations, want 2", len(all))
	}
	if ents := b.dirEntries(); len(ents) != 1 || ents[0] != made.Folder {
		t.Fatalf("download_path holds %v, want only %s", ents, made.Folder)
	}
}

// Run again routes anew, as a new file: away from a drained cluster when its
// rules allow failover, and to another cluster when its own is gone from the
// configuration.
func TestRunAgainRoutesAnew(t *testing.T) {
	b := newBed(t, withClusters("first", "second"))
	s := b.start()
	old := b.acceptDone(s, 730, "n.sh", "echo n > n.out\n", "")
	if old.Cluster != "first" {
		t.Fatalf("routed to %s", old.Cluster)
	}
	if err := s.Drain("first", "", "admin"); err != nil {
		t.Fatal(err)
	}
	moved, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, Press: "d", Window: time.Hour})
	if err != nil || moved.Cluster != "second" {
		t.Fatalf("drained: %+v, %v; want it on second", moved, err)
	}
	if d := b.waitState(moved.ID, store.StateNotified, store.StateError); d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}

	b.stop()
	b.cfg.Clusters = b.cfg.Clusters[1:]
	delete(b.scheds, "first")
	delete(b.runners, "first")
	s = b.start()
	gone, err := s.RunAgain(t.Context(), RunAgainRequest{Admin: true, CalcID: old.ID, Press: "g", Window: time.Hour})
	if err != nil || gone.Cluster != "second" {
		t.Fatalf("cluster gone: %+v, %v; want it on second", gone, err)
	}
	if d := b.waitState(gone.ID, store.StateNotified, store.StateError); d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}
}

// Only the owner (any of their Telegram accounts) or an admin may run a
// calculation again: the scheduler checks it too, not only the bot.
func TestRunAgainOwnerOrAdmin(t *testing.T) {
	b := newBed(t)
	s := b.start()
	old := b.acceptDone(s, 730, "o.sh", "echo o > o.out\n", "")
	if err := b.st.UpsertAccount(store.TelegramAccount{TelegramID: 901, UserID: b.user.ID, DisplayName: "Ada"}); err != nil {
		t.Fatal(err)
	}
	other, err := b.st.CreateUser(store.User{FirstName: "Eve", Org: "ipc", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.st.UpsertAccount(store.TelegramAccount{TelegramID: 902, UserID: other.ID, DisplayName: "Eve"}); err != nil {
		t.Fatal(err)
	}
	for _, by := range []int64{902, 903} { // another user; nobody the bot knows
		if _, err := s.RunAgain(t.Context(), RunAgainRequest{CalcID: old.ID, By: by, Press: "p", Window: time.Hour}); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("pressed by %d: %v, want ErrNotAllowed", by, err)
		}
	}
	if all, _ := b.st.CalcsOfUser(b.user.ID, time.Time{}, 0); len(all) != 1 {
		t.Fatalf("%d calculations after refused presses, want 1", len(all))
	}
	mine, err := s.RunAgain(t.Context(), RunAgainRequest{CalcID: old.ID, By: 901, Press: "p", Window: time.Hour})
	if err != nil || mine.UserID != b.user.ID {
		t.Fatalf("the owner's press: %+v, %v", mine, err)
	}
	// The user is at their limit now; the same press handled again (after a
	// crash) still finds its calculation instead of a used-up quota.
	if _, err := b.st.UpdateUser(b.user.ID, func(_ *store.Tx, u *store.User) error { u.Limit = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	if again, err := s.RunAgain(t.Context(), RunAgainRequest{CalcID: old.ID, By: 901, Press: "p", Window: time.Hour}); err != nil || again.ID != mine.ID {
		t.Fatalf("the same press again at the limit: calc %d, %v; want %d", again.ID, err, mine.ID)
	}
	if _, err := b.st.UpdateUser(b.user.ID, func(_ *store.Tx, u *store.User) error { u.Limit = 10; return nil }); err != nil {
		t.Fatal(err)
	}
	admins, err := s.RunAgain(t.Context(), RunAgainRequest{CalcID: old.ID, By: 903, Admin: true, Press: "a", Window: time.Hour})
	if err != nil || admins.UserID != b.user.ID || admins.ID == mine.ID {
		t.Fatalf("an admin's press: %+v, %v; want a new calculation of the owner's", admins, err)
	}
	b.waitState(mine.ID, store.StateNotified, store.StateError)
	b.waitState(admins.ID, store.StateNotified, store.StateError)
}
