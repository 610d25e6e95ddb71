package scheduler

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// housekeepWorld is a store with calculations in every situation housekeeping
// tells apart, on the bed's cluster "loc": notified ones (remote folder still
// there, already cleaned, results left on the cluster as too large, local
// folder outside download_path, local folder already gone), ones in error
// (before and after submission, notice queued or not), and one that is not
// final. Their end times are distinct and increasing. It returns the bed,
// stopped, and the calculations in end-time order (the not final one last).
func housekeepWorld(t *testing.T) (*bed, []store.Calculation) {
	t.Helper()
	b := newBed(t)
	b.cfg.Retention = 24 * time.Hour
	b.start()
	var calcs []store.Calculation
	for range 6 {
		c := b.submit("k.sh", "echo r > r.txt", "")
		calcs = append(calcs, b.waitState(c.ID, store.StateNotified))
	}
	// Two in error after submission: the fetch is refused.
	b.faults["loc"].set("fetch", plugins.Errorf(plugins.KindNotFound, "list /x: no such folder"))
	for range 2 {
		c := b.submit("e.sh", "echo", "")
		calcs = append(calcs, b.waitError(c.ID))
	}
	b.faults["loc"].set("fetch", nil)
	b.stop()
	// Two in error before submission, and one received: created, never run.
	for i := range 3 {
		c := b.create(b.s, "x.sh", "echo", "", false)
		if i < 2 {
			var err error
			if c, err = b.st.Transition(c.ID, store.StateError, "refused", nil); err != nil {
				t.Fatal(err)
			}
		}
		calcs = append(calcs, c)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	change := func(i int, f func(c *store.Calculation)) {
		c, err := b.st.UpdateCalc(calcs[i].ID, func(_ *store.Tx, c *store.Calculation) error { f(c); return nil })
		if err != nil {
			t.Fatal(err)
		}
		calcs[i] = c
	}
	change(1, func(c *store.Calculation) { c.Progress.Cleaned = true })
	change(2, func(c *store.Calculation) { c.Progress.Code = CodeTooLarge })
	change(3, func(c *store.Calculation) { c.LocalDir = outside })
	if err := os.RemoveAll(calcs[4].LocalDir); err != nil {
		t.Fatal(err)
	}
	change(6, func(c *store.Calculation) { c.Progress.ErrorNotified = false }) // a crash before the notice was recorded
	change(8, func(c *store.Calculation) { c.Progress.ErrorNotified = true })
	for i, c := range calcs[:len(calcs)-1] {
		if !c.State.Final() || i > 0 && !endOf(c).After(endOf(calcs[i-1])) {
			t.Fatalf("calc %d: %s, ended %s after %s: the world needs distinct, increasing end times", c.ID, c.State, endOf(c), endOf(calcs[i-1]))
		}
	}
	return b, calcs
}

func endOf(c store.Calculation) time.Time { return c.History[len(c.History)-1].At }

// what housekeeping did to a calculation, observed from outside.
type housekept struct {
	localGone, remoteGone bool
	notices               int
}

func observe(b *bed, calcs []store.Calculation) []housekept {
	out := make([]housekept, len(calcs))
	for i, c := range calcs {
		_, errL := os.Stat(c.LocalDir)
		_, errR := os.Stat(b.remote(c))
		b.notes.mu.Lock()
		n := b.notes.calls[notifyKey(c, EventError)] // every Notify, repeats included
		b.notes.mu.Unlock()
		out[i] = housekept{localGone: os.IsNotExist(errL), remoteGone: os.IsNotExist(errR), notices: n}
	}
	return out
}

// TestHousekeepingActsOnTheSameCalculations runs housekeeping (cleanup = true,
// retention 24 h) with its cutoff between two calculations' ends, then again,
// then with every end past the cutoff, and checks each time against the rule
// housekeeping has always followed, applied to the full records: a notified
// calculation's remote folder is removed unless cleaned, too large or never
// submitted; a calculation in error whose notice was not queued gets it; the
// local folder of a final calculation that ended at or before the cutoff is
// removed if it is inside download_path; nothing else is touched.
func TestHousekeepingActsOnTheSameCalculations(t *testing.T) {
	b, calcs := housekeepWorld(t)
	b.cfg.Clusters[0].Cleanup = true
	ownDir := func(c store.Calculation) bool { return filepath.Dir(c.LocalDir) == filepath.Clean(b.cfg.DownloadPath) }
	run := func(cutoff time.Time) {
		t.Helper()
		s, err := New(b.cfg, b.st, b.scheds, b.runners, b.notes, testLogger(t), WithClock(func() time.Time { return cutoff.Add(b.cfg.Retention) }))
		if err != nil {
			t.Fatal(err)
		}
		before := observe(b, calcs)
		s.housekeep(context.Background())
		after := observe(b, calcs)
		for i, c := range calcs {
			want := before[i]
			if c.State == store.StateNotified && !c.Progress.Cleaned && c.Progress.Code != CodeTooLarge && c.Submitted() {
				want.remoteGone = true
			}
			if c.State == store.StateError && !c.Progress.ErrorNotified {
				want.notices++
			}
			if c.State.Final() && !endOf(c).After(cutoff) && ownDir(c) {
				want.localGone = true
			}
			if after[i] != want {
				t.Errorf("calc %d (%d of the world, %s): before %+v, after %+v, want %+v", c.ID, i, c.State, before[i], after[i], want)
			}
			// What housekeeping recorded is what the next run reads.
			if calcs[i], err = b.st.Calc(c.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := observe(b, calcs)
	if slices.ContainsFunc(first[:6], func(h housekept) bool { return h.remoteGone }) {
		t.Fatalf("a notified calculation's remote folder is gone before housekeeping: %+v", first[:6])
	}
	mid := endOf(calcs[5]) // notified ones up to 5 have aged, errors not
	run(mid)
	run(mid)
	run(endOf(calcs[len(calcs)-2]).Add(time.Hour))
	last := observe(b, calcs)
	for i, c := range calcs {
		if want := c.State.Final() && ownDir(c); last[i].localGone != (want || i == 4) {
			t.Errorf("calc %d (%d of the world): local folder gone %t at the end", c.ID, i, last[i].localGone)
		}
	}
	if _, err := os.Stat(calcs[3].LocalDir); err != nil {
		t.Errorf("the folder outside download_path: %v", err)
	}
}

// TestHousekeepingRemembersWhatItSwept: a folder housekeeping removed is not
// looked at again (its record is not read again): one that reappears under an
// old calculation stays, while the folders of calculations that aged since
// are removed.
func TestHousekeepingRemembersWhatItSwept(t *testing.T) {
	b, calcs := housekeepWorld(t)
	at := func(cutoff time.Time) {
		t.Helper()
		s, err := New(b.cfg, b.st, b.scheds, b.runners, b.notes, testLogger(t), WithClock(func() time.Time { return cutoff.Add(b.cfg.Retention) }))
		if err != nil {
			t.Fatal(err)
		}
		s.housekeep(context.Background())
	}
	at(endOf(calcs[0]))
	if _, err := os.Stat(calcs[0].LocalDir); !os.IsNotExist(err) {
		t.Fatalf("the oldest calculation's folder: %v", err)
	}
	if err := os.MkdirAll(calcs[0].LocalDir, 0o755); err != nil {
		t.Fatal(err)
	}
	at(endOf(calcs[5]))
	if _, err := os.Stat(calcs[0].LocalDir); err != nil {
		t.Errorf("the swept calculation's folder was looked at again: %v", err)
	}
	if _, err := os.Stat(calcs[5].LocalDir); !os.IsNotExist(err) {
		t.Errorf("calc %d aged since the last run; its folder: %v", calcs[5].ID, err)
	}
}
