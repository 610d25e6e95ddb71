package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler/nextcloud"
	"hpcbot/store"
)

// finishStates are the states the finisher moves on: the job ended (fetch),
// retrieved and delivery_failed (deliver), delivered (notify).
var finishStates = []store.State{store.StateSucceeded, store.StateFailed, store.StateCancelled,
	store.StateTimedOut, store.StateRetrieved, store.StateDeliveryFailed, store.StateDelivered}

// finishLoop hands calculations whose job ended to a pool of workers that fetch,
// deliver and notify them. It looks at the store when a poll saw a job end, when
// a retry is due, and at least every minute.
func (s *Scheduler) finishLoop(ctx context.Context) {
	work := make(chan finishJob)
	var wg sync.WaitGroup
	for range s.deliveryWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				s.safely(j.id, func() { s.finish(ctx, j.id) })
				if j.slot != nil {
					j.slot.fetchDone()
				}
				s.release(j.id)
				kick(s.finishKick) // it may wait for a retry now: the dispatcher sets its timer
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	s.retellErrors(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.finishKick:
		case <-timer.C:
		}
		timer.Stop()
		timer.Reset(s.dispatchFinish(ctx, work))
	}
}

// finishJob is one calculation for a delivery worker; slot is the cluster whose
// fetch slot it holds, if it is to be fetched.
type finishJob struct {
	id   uint64
	slot *clusterState
}

// fetchSlots is how many delivery workers may fetch from one cluster at once, so
// that a cluster with slow transfers never holds every worker.
func (s *Scheduler) fetchSlots() int { return max(1, s.deliveryWorkers/2) }

// dispatchFinish sends every due calculation to the workers and returns when to
// look again.
func (s *Scheduler) dispatchFinish(ctx context.Context, work chan<- finishJob) time.Duration {
	calcs, err := s.st.CalcsByState(finishStates...)
	if err != nil {
		s.log.Error("read calculations", "err", err)
		return s.backoffBase
	}
	next := finishSafetyNet
	for _, c := range calcs {
		if c.State == store.StateDeliveryFailed && c.Progress.DeliveryHeld && c.NextTry.IsZero() {
			continue // waits for an admin
		}
		if wait := c.NextTry.Sub(s.now()); wait > 0 {
			next = min(next, wait)
			continue
		}
		if !s.claim(c.ID) {
			continue
		}
		j := finishJob{id: c.ID}
		if cl := s.byLabel[c.Cluster]; cl != nil && c.State.Ended() && c.JobID != "" {
			if !cl.fetchSlot(s.fetchSlots()) {
				s.release(c.ID) // its cluster's slots are busy; a finishing worker kicks us
				continue
			}
			j.slot = cl
		}
		select {
		case work <- j:
		case <-ctx.Done():
			if j.slot != nil {
				j.slot.fetchDone()
			}
			s.release(c.ID)
			return next
		}
	}
	return next
}

// finish takes one calculation as far as it goes: fetch, deliver, notify.
func (s *Scheduler) finish(ctx context.Context, id uint64) {
	for ctx.Err() == nil {
		calc, err := s.st.Calc(id)
		if err != nil {
			s.log.Error("read calculation", "calc", id, "err", err)
			return
		}
		if calc.NextTry.After(s.now()) || (calc.State == store.StateDeliveryFailed && calc.Progress.DeliveryHeld && calc.NextTry.IsZero()) {
			return
		}
		var ok bool
		switch {
		case calc.State.Ended():
			ok = s.fetch(ctx, calc)
		case calc.State == store.StateRetrieved, calc.State == store.StateDeliveryFailed:
			ok = s.deliver(ctx, calc)
		case calc.State == store.StateDelivered:
			ok = s.notifyFinished(ctx, calc)
		default:
			return
		}
		if !ok {
			return
		}
	}
}

// fetch copies the results into LocalDir (→ retrieved). The whitelists are the
// configured ones plus the runner's, and the job's own output files; the total is
// capped by the free space in download_path less a reserve, so a nearly full disk
// gives a delivery with files skipped ("total size cap") rather than a broken one.
func (s *Scheduler) fetch(ctx context.Context, calc store.Calculation) bool {
	if calc.JobID == "" { // cancelled before submission: nothing ran
		calc.Digest = nil
		return s.retrieved(calc, plugins.FetchResult{}, "no job, nothing to fetch")
	}
	c := s.byLabel[calc.Cluster]
	if c == nil {
		s.toError(ctx, calc, CodeFetchFailed, fmt.Sprintf("cluster %q is no longer configured", calc.Cluster))
		return false
	}
	req := plugins.FetchRequest{
		Folder:     calc.Folder,
		LocalDir:   calc.LocalDir,
		Extensions: slices.Concat(s.cfg.ExtensionsWhitelist, calc.ResultExtensions),
		Files:      slices.Concat(s.cfg.FilesWhitelist, calc.ResultFiles),
		MaxSize:    s.cfg.ResultMaxSize,
	}
	if len(req.Extensions) > 0 || len(req.Files) > 0 {
		// Whitelists in force: the program's own output is always wanted.
		name := jobName(calc.ID)
		req.Files = append(req.Files, name+".out", name+".err")
	}
	if free, err := s.freeSpace(s.downloadPath); err == nil {
		if free <= s.diskReserve {
			s.retryLater(ctx, calc, CodeFetchFailed, fmt.Errorf("the bot's disk is full: %d bytes free in %s", free, s.downloadPath), 0)
			return false
		}
		req.MaxTotal = free - s.diskReserve
	}
	sctx, done := s.stepContext(ctx)
	defer done()
	res, err := c.sched.Fetch(sctx, req)
	c.health(err)
	if err != nil {
		switch {
		case ctx.Err() != nil:
		case diskFull(err):
			s.retryLater(ctx, calc, CodeFetchFailed, fmt.Errorf("the bot's disk is full: %w", err), 0)
		case plugins.KindOf(err) == plugins.KindTransient:
			s.retryLater(ctx, calc, CodeClusterUnreachable, fmt.Errorf("fetch from %s: %w", c.label(), err), 0)
		case plugins.KindOf(err) == plugins.KindAuth:
			s.toError(ctx, calc, CodeAuthFailed, fmt.Sprintf("cluster %s refused the bot's login while fetching results; an admin must fix the key or host key, then retry: %v", c.label(), err))
		case plugins.KindOf(err) == plugins.KindNotFound:
			s.toError(ctx, calc, CodeFetchFailed, fmt.Sprintf("the calculation's folder is gone from %s: %v", c.label(), err))
		default:
			s.toError(ctx, calc, CodeFetchFailed, fmt.Sprintf("fetch from %s: %v", c.label(), err))
		}
		return false
	}
	calc.Digest = s.digest(ctx, c, calc, res)
	return s.retrieved(calc, res, fmt.Sprintf("%d files, %d bytes, %d skipped", len(res.Files), res.Bytes, len(res.Skipped)))
}

// maxSkipLogs bounds the log lines of one fetch's skipped files.
const maxSkipLogs = 20

func (s *Scheduler) retrieved(calc store.Calculation, res plugins.FetchResult, note string) bool {
	skipped := make([]store.SkippedFile, len(res.Skipped))
	for i, sk := range res.Skipped {
		skipped[i] = store.SkippedFile{Path: sk.Path, Code: sk.Code}
		// The plugin's English detail is for the log; the user reads the code.
		if i < maxSkipLogs {
			s.log.Info("result file not fetched", "calc", calc.ID, "path", sk.Path, "size", sk.Size, "code", sk.Code, "reason", sk.Reason)
		}
	}
	if len(res.Skipped) > maxSkipLogs {
		s.log.Info("more result files not fetched", "calc", calc.ID, "count", len(res.Skipped)-maxSkipLogs)
	}
	before := calc
	after, err := s.st.Transition(calc.ID, store.StateRetrieved, note, func(_ *store.Tx, c *store.Calculation) error {
		if c.State != calc.State {
			return errStale
		}
		c.Progress.Files = res.Files
		c.Digest = calc.Digest
		if len(skipped) > 0 {
			c.Progress.Skipped = skipped
		}
		clearWait(c)
		return nil
	})
	if err != nil {
		if !errors.Is(err, errStale) {
			s.log.Error("record retrieved", "calc", calc.ID, "err", err)
		}
		return false
	}
	s.log.Info("results fetched", "calc", calc.ID, "cluster", calc.Cluster, "job", calc.JobID, "files", len(res.Files), "skipped", len(res.Skipped))
	s.tellResumed(context.Background(), before, after)
	return true
}

// deliver puts the results where the user gets them (→ delivered): a Nextcloud
// folder and a public link, or the files for the bot to send.
// A cancelled calculation with no result of any content has nothing to deliver.
func (s *Scheduler) deliver(ctx context.Context, calc store.Calculation) bool {
	if files, _ := s.resultFiles(calc); s.nc != nil && calc.JobID != "" && (len(files) > 0 || !isCancelled(calc)) {
		if !s.fallbackDue(calc) {
			return s.deliverCloud(ctx, calc)
		}
		s.log.Warn("the cloud has not taken the results for longer than storage.fallback_after; sending them as Telegram files",
			"calc", calc.ID, "since", calc.WaitingSince.Format(time.RFC3339), "fallback_after", time.Duration(s.cfg.Storage.FallbackAfter))
	}
	return s.deliverFiles(ctx, calc)
}

// cloudPaths are the remote folder of a calculation (below base_path) and the
// path to share: the folder itself (per_calculation), or the user's folder
// (per_user), with sub the calculation's folder inside the share.
func (s *Scheduler) cloudPaths(calc store.Calculation) (dir, share, sub string) {
	if s.cfg.Storage.Share == "per_user" {
		user := fmt.Sprintf("%s%d", userFolderPrefix, calc.UserID)
		return path.Join(user, calc.Folder), user, calc.Folder
	}
	return calc.Folder, calc.Folder, ""
}

func (s *Scheduler) deliverCloud(ctx context.Context, calc store.Calculation) bool {
	if _, err := os.Stat(calc.LocalDir); err != nil {
		s.toError(ctx, calc, CodeFetchFailed, fmt.Sprintf("the local results folder is gone: %v", err))
		return false
	}
	state, err := nextcloud.DecodeUploadState(calc.Progress.Upload)
	if err != nil {
		s.log.Warn("upload state unreadable; starting the upload over", "calc", calc.ID, "err", err)
		state = nextcloud.UploadState{}
	}
	dir, shareDir, sub := s.cloudPaths(calc)
	sctx, done := s.stepContext(ctx)
	defer done()
	save := func(st nextcloud.UploadState) error {
		_, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, c *store.Calculation) error {
			c.Progress.Upload = st.Encode()
			return nil
		})
		return err
	}
	link := ""
	err = s.nc.UploadDir(sctx, calc.LocalDir, dir, state, save)
	if err == nil {
		// One at a time: two calculations of one user (per_user) would otherwise
		// both find no share and create two. Creations are rate limited anyway.
		s.shareMu.Lock()
		link, err = s.nc.Share(sctx, shareDir)
		s.shareMu.Unlock()
	}
	if err == nil && sub != "" {
		link, err = nextcloud.ShareFolderLink(link, sub)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.deliveryFailed(ctx, calc, err)
		}
		return false
	}
	return s.delivered(calc, "uploaded to the cloud", func(c *store.Calculation) {
		c.ShareLink = link
		c.Progress.Upload = nil
	})
}

// deliverFiles chooses the files the bot sends: the one result file, or a zip of
// several; above the Bot API's upload limit none, and the user is told where the
// results are on the cluster (Code too_large).
func (s *Scheduler) deliverFiles(ctx context.Context, calc store.Calculation) bool {
	files, total := s.resultFiles(calc)
	code, where := "", ""
	if len(files) > 1 && total <= s.uploadLimit {
		zip, err := s.zipResults(calc, files)
		if err != nil {
			if diskFull(err) {
				s.retryLater(ctx, calc, CodeFetchFailed, fmt.Errorf("the bot's disk is full: %w", err), 0)
			} else {
				s.toError(ctx, calc, CodeFetchFailed, fmt.Sprintf("zip the results: %v", err))
			}
			return false
		}
		files = []string{zip}
		if info, err := os.Stat(zip); err == nil {
			total = info.Size()
		}
	}
	if total > s.uploadLimit {
		code, where = CodeTooLarge, s.remoteWhere(calc)
		files = nil
	}
	return s.delivered(calc, fmt.Sprintf("%d files for the bot to send", len(files)), func(c *store.Calculation) {
		c.Progress.Send, c.Progress.Code, c.Progress.Where = files, code, where
	})
}

// isCancelled reports whether the calculation's job ended cancelled.
func isCancelled(calc store.Calculation) bool {
	state, _, _ := calc.Outcome()
	return state == store.StateCancelled
}

// resultFiles are the fetched files to deliver and their total size: those
// still in LocalDir but the input; of a cancelled calculation only those with
// content (a job stopped early leaves empty outputs that tell nothing).
func (s *Scheduler) resultFiles(calc store.Calculation) ([]string, int64) {
	cancelled := isCancelled(calc)
	var files []string
	var total int64
	for _, r := range calc.Progress.Files {
		if r == calc.InputName {
			continue // the user has it
		}
		p := filepath.Join(calc.LocalDir, filepath.FromSlash(r))
		info, err := os.Stat(p)
		if err != nil || !info.Mode().IsRegular() || (cancelled && info.Size() == 0) {
			continue
		}
		files = append(files, p)
		total += info.Size()
	}
	return files, total
}

// remoteWhere names the calculation's folder on its cluster: "loc:/scratch/hpcbot/1732640000_7_h2o".
func (s *Scheduler) remoteWhere(calc store.Calculation) string {
	if c := s.byLabel[calc.Cluster]; c != nil {
		return c.label() + ":" + path.Join(c.cfg.UploadPath, calc.Folder)
	}
	return calc.Cluster + ":" + calc.Folder
}

func (s *Scheduler) delivered(calc store.Calculation, note string, set func(*store.Calculation)) bool {
	before := calc
	after, err := s.st.Transition(calc.ID, store.StateDelivered, note, func(_ *store.Tx, c *store.Calculation) error {
		if c.State != calc.State {
			return errStale
		}
		set(c)
		clearWait(c)
		c.Progress.DeliveryHeld = false
		return nil
	})
	if err != nil {
		if !errors.Is(err, errStale) {
			s.log.Error("record delivered", "calc", calc.ID, "err", err)
		}
		return false
	}
	if c := s.byLabel[calc.Cluster]; c != nil {
		c.mu.Lock()
		c.deliveries++
		c.mu.Unlock()
	}
	s.log.Info("results delivered", "calc", calc.ID, "user", calc.UserID, "link", after.ShareLink != "")
	if before.State != store.StateDeliveryFailed { // after a failed delivery the finished notice says it all
		s.tellResumed(context.Background(), before, after)
	}
	return true
}

// notifyFinished tells the user (→ notified), then removes the remote folder when
// the cluster says cleanup = true and the results are not left there.
func (s *Scheduler) notifyFinished(ctx context.Context, calc store.Calculation) bool {
	n := s.finishedNotice(calc)
	if err := s.notifier.Notify(ctx, n); err != nil {
		if ctx.Err() == nil {
			s.retryLater(ctx, calc, "", fmt.Errorf("notify: %w", err), 0)
		}
		return false
	}
	after, err := s.st.Transition(calc.ID, store.StateNotified, string(n.Event), func(_ *store.Tx, c *store.Calculation) error {
		if c.State != store.StateDelivered {
			return errStale
		}
		clearWait(c)
		return nil
	})
	if err != nil {
		if !errors.Is(err, errStale) {
			s.log.Error("record notified", "calc", calc.ID, "err", err)
		}
		return false
	}
	s.log.Info("user notified", "calc", calc.ID, "user", calc.UserID, "event", n.Event)
	s.cleanup(ctx, after)
	return true
}

// finishedNotice builds the last message of a calculation from its record, so a
// redo after a crash builds the same one.
func (s *Scheduler) finishedNotice(calc store.Calculation) Notification {
	n := deliveredNotice(calc)
	if n.Event == EventFinished && n.Outcome != store.StateSucceeded {
		n.Tail = s.tail(calc)
	}
	return n
}

// deliveredNotice is the last message of a calculation whose results are
// delivered, from its record alone (no Tail).
func deliveredNotice(calc store.Calculation) Notification {
	state, _, _ := calc.Outcome()
	n := Notification{Key: notifyKey(calc, EventFinished), Event: EventFinished, Calc: calc,
		Outcome: state, Link: calc.ShareLink, Where: calc.Progress.Where, Code: calc.Progress.Code}
	if calc.JobID == "" {
		n.Key, n.Event = notifyKey(calc, EventCancelled), EventCancelled
		return n
	}
	n.Files, n.Skipped = calc.Progress.Send, calc.Progress.Skipped
	if n.Code == "" && calc.Progress.OutcomeUnknown {
		n.Code = CodeOutcomeUnknown
	}
	return n
}

// EndNotice is the notice of a calculation's end built from its record alone,
// without the tail of the error output (which needs the cluster): what the
// user was told at the end, for the bot's card. ok is false unless the
// calculation is at its end: delivered or notified (EventFinished, or
// EventCancelled when it was cancelled before it had a job), or error.
func EndNotice(calc store.Calculation) (n Notification, ok bool) {
	switch calc.State {
	case store.StateDelivered, store.StateNotified:
		return deliveredNotice(calc), true
	case store.StateError:
		return errorNotice(calc), true
	}
	return Notification{}, false
}

// cleanup removes the calculation's remote folder when its cluster asks for it,
// unless the results were left there (too large) or it never got there. Best
// effort: housekeeping tries again.
func (s *Scheduler) cleanup(ctx context.Context, calc store.Calculation) {
	c := s.byLabel[calc.Cluster]
	if c == nil || !c.cfg.Cleanup || calc.Progress.Cleaned || calc.Progress.Code == CodeTooLarge || !calc.Submitted() {
		return
	}
	sctx, done := s.stepContext(ctx)
	defer done()
	err := c.sched.Cleanup(sctx, calc.Folder)
	c.health(err)
	if err != nil {
		s.log.Warn("remove remote folder", "calc", calc.ID, "cluster", c.label(), "err", err)
		return
	}
	if _, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, c *store.Calculation) error {
		c.Progress.Cleaned = true
		return nil
	}); err != nil {
		s.log.Error("record cleanup", "calc", calc.ID, "err", err)
	}
}

// tail returns the last lines of the job's error output, if it was fetched.
func (s *Scheduler) tail(calc store.Calculation) string {
	if calc.LocalDir == "" {
		return ""
	}
	data, whole, err := readEnd(filepath.Join(calc.LocalDir, jobName(calc.ID)+".err"), 8<<10)
	if err != nil {
		return ""
	}
	text, _ := plugins.TailText(data, whole, defaultTailLines, defaultTailBytes)
	return strings.TrimSpace(text)
}

// retellErrors queues EventError again for calculations that went to error
// without the notice being recorded (a crash in between). The Notifier drops
// keys it has seen. It reads the store's index of ended calculations, and the
// records of those whose notice is due.
func (s *Scheduler) retellErrors(ctx context.Context) {
	due, err := s.st.EndedDue(nil)
	if err != nil {
		s.log.Error("read calculations", "err", err)
		return
	}
	s.actOnDue(ctx, due)
}
