package scheduler

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hpcbot/store"
)

// housekeepingLoop runs housekeep at start and then every housekeeping interval.
func (s *Scheduler) housekeepingLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.housekeep(ctx)
		t.Reset(s.housekeeping)
	}
}

// housekeep removes remote folders whose cleanup after delivery failed, queues
// error notices a crash cut short, and removes the local folders of
// calculations that ended (notified or error) longer than retention ago. It
// reads the store's index of ended calculations (store.EndedDue,
// store.EndedCalcs), and whole records only of the calculations it acts on.
func (s *Scheduler) housekeep(ctx context.Context) {
	due, err := s.st.EndedDue(func(cluster string) bool {
		c := s.byLabel[cluster]
		return c != nil && c.cfg.Cleanup
	})
	if err != nil {
		s.log.Error("housekeeping: read calculations", "err", err)
		return
	}
	s.actOnDue(ctx, due)
	s.removeOldFolders(ctx)
}

// actOnDue retries the remote cleanup of the notified calculations and queues
// the error notice of those in error whose notice is not queued, after reading
// each record (the index entry may be a moment old).
func (s *Scheduler) actOnDue(ctx context.Context, due []store.EndedCalc) {
	for _, e := range due {
		if ctx.Err() != nil {
			return
		}
		c, err := s.st.Calc(e.ID)
		if err != nil {
			s.log.Error("read calculation", "calc", e.ID, "err", err)
			continue
		}
		switch {
		case c.State == store.StateNotified:
			s.cleanup(ctx, c)
		case c.State == store.StateError && !c.Progress.ErrorNotified:
			s.tellError(ctx, c)
		}
	}
}

// sweptKey is the store's kv key of the last calculation, in the order of
// store.EndedCalcs, up to which every local folder housekeeping had to remove is
// removed (sweptMark, as JSON).
const sweptKey = "housekeeping/local_swept"

// sweptMark is the value under sweptKey.
type sweptMark struct {
	At time.Time `json:"at"`
	ID uint64    `json:"id"`
}

// sweptPage is how many index entries removeOldFolders reads at a time.
const sweptPage = 512

// removeOldFolders removes the local folders of the calculations that entered
// notified or error at or before now - retention and after the stored mark,
// then moves the mark past every one it is done with (removed, already gone,
// not inside download_path, or no longer final). A folder it fails to remove
// holds the mark back, so the next run tries it again.
func (s *Scheduler) removeOldFolders(ctx context.Context) {
	cutoff := s.now().Add(-s.cfg.Retention)
	var mark store.EndedCalc
	if v, ok, err := s.st.Value(sweptKey); err != nil {
		s.log.Error("housekeeping: read progress", "err", err)
		return
	} else if ok {
		var m sweptMark
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			s.log.Warn("housekeeping: unreadable progress; starting from the oldest calculation", "err", err)
		} else {
			mark = store.EndedCalc{ID: m.ID, At: m.At}
		}
	}
	start, next := mark, mark
	held := false // a folder could not be removed: the mark stays before it
	removed := 0
	defer func() {
		if removed > 0 {
			s.log.Info("housekeeping: removed old local folders", "count", removed, "retention", s.cfg.Retention)
		}
		if mark == start {
			return
		}
		b, err := json.Marshal(sweptMark{At: mark.At, ID: mark.ID})
		if err == nil {
			err = s.st.SetValue(sweptKey, string(b))
		}
		if err != nil {
			s.log.Error("housekeeping: record progress", "err", err)
		}
	}()
	for {
		page, err := s.st.EndedCalcs(next, cutoff, sweptPage)
		if err != nil {
			s.log.Error("housekeeping: read calculations", "err", err)
			return
		}
		for _, e := range page {
			if ctx.Err() != nil {
				return
			}
			done, ok := s.removeOldFolder(e.ID, cutoff)
			if done {
				removed++
			}
			if !ok {
				held = true
			}
			if !held {
				mark = e
			}
		}
		if len(page) < sweptPage {
			return
		}
		next = page[len(page)-1]
	}
}

// removeOldFolder removes calculation id's local folder if it is still final,
// ended at or before cutoff, and its folder is inside download_path. removed:
// it removed the folder; ok is false when it could not (read or removal
// failed), so that housekeeping tries again.
func (s *Scheduler) removeOldFolder(id uint64, cutoff time.Time) (removed, ok bool) {
	c, err := s.st.Calc(id)
	if err != nil {
		s.log.Error("housekeeping: read calculation", "calc", id, "err", err)
		return false, false
	}
	// Not final or ended later: an admin's retry moved it since the index was
	// read; its next end has an entry of its own.
	if !c.State.Final() || len(c.History) == 0 || c.History[len(c.History)-1].At.After(cutoff) || !s.ownFolder(c.LocalDir) {
		return false, true
	}
	if _, err := os.Stat(c.LocalDir); err != nil {
		return false, true
	}
	if err := os.RemoveAll(c.LocalDir); err != nil {
		s.log.Warn("housekeeping: remove local folder", "calc", c.ID, "err", err)
		return false, false
	}
	return true, true
}

// ownFolder reports whether dir is a folder strictly inside download_path, the
// only place housekeeping ever removes anything.
func (s *Scheduler) ownFolder(dir string) bool {
	if dir == "" || !filepath.IsAbs(dir) {
		return false
	}
	rel, err := filepath.Rel(s.downloadPath, filepath.Clean(dir))
	return err == nil && rel != "." && filepath.IsLocal(rel) && !strings.Contains(rel, string(filepath.Separator))
}
