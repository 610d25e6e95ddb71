package scheduler

import (
	"context"
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

// housekeep removes the local folders of calculations that ended (notified or
// error) longer than retention ago, removes remote folders whose cleanup after
// delivery failed, and queues error notices a crash cut short.
func (s *Scheduler) housekeep(ctx context.Context) {
	calcs, err := s.st.CalcsByState(store.StateNotified, store.StateError)
	if err != nil {
		s.log.Error("housekeeping: read calculations", "err", err)
		return
	}
	cutoff := s.now().Add(-s.cfg.Retention)
	removed := 0
	for _, c := range calcs {
		if ctx.Err() != nil {
			return
		}
		if c.State == store.StateNotified {
			s.cleanup(ctx, c)
		} else if !c.Progress.ErrorNotified {
			s.tellError(ctx, c)
		}
		if len(c.History) == 0 || c.History[len(c.History)-1].At.After(cutoff) || !s.ownFolder(c.LocalDir) {
			continue
		}
		if _, err := os.Stat(c.LocalDir); err != nil {
			continue
		}
		if err := os.RemoveAll(c.LocalDir); err != nil {
			s.log.Warn("housekeeping: remove local folder", "calc", c.ID, "err", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		s.log.Info("housekeeping: removed old local folders", "count", removed, "retention", s.cfg.Retention)
	}
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
