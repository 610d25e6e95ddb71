package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// pollPass asks the cluster about all its active jobs with one plugin Poll and
// applies the answers. It returns the pause before the next poll: fetch_time,
// or the backoff while the cluster fails.
//
// It reads the cluster's jobs from the store's active index (store.ActiveJobs),
// not whole records: a full record is read only for a job whose answer changes
// something (inside the store's write), for a notice or cancel a crash may have
// cut short, and when the poll fails past its grace.
func (s *Scheduler) pollPass(ctx context.Context, c *clusterState) time.Duration {
	next := s.cfg.FetchTime.Next()
	s.sampleTraffic(ctx, c)
	jobs, err := s.st.ActiveJobs(c.label())
	if err != nil {
		s.log.Error("read calculations", "cluster", c.label(), "err", err)
		return next
	}
	if len(jobs) == 0 {
		return next
	}
	sctx, done := s.stepContext(ctx)
	defer done()
	// Redo what a crash may have cut short: the accepted notice, a cancel request.
	for _, j := range jobs {
		if j.Accepted && j.Cancel != store.CancelRequested {
			continue
		}
		calc, ok := s.activeCalc(c, j)
		if !ok {
			continue
		}
		s.tellAccepted(ctx, calc)
		if calc.Progress.Cancel == store.CancelRequested {
			s.cancelJob(sctx, c, calc)
		}
	}
	refs := make([]plugins.JobRef, len(jobs))
	for i, j := range jobs {
		refs[i] = plugins.JobRef{CalcID: j.ID, JobID: j.JobID, Folder: j.Folder, Launch: j.Launch}
	}
	began := time.Now()
	statuses, err := c.sched.Poll(sctx, refs)
	if err == nil && len(statuses) != len(refs) {
		err = plugins.Errorf(plugins.KindTransient, "poll: %d answers for %d jobs", len(statuses), len(refs))
	}
	c.health(err)
	c.polled(began, err)
	if err != nil {
		if ctx.Err() != nil {
			return next
		}
		return s.pollFailed(ctx, c, jobs, err, next)
	}
	c.mu.Lock()
	c.downSince, c.pollFails = time.Time{}, 0
	c.mu.Unlock()
	var writes []*jobWrite
	for i, j := range jobs {
		if w := s.apply(ctx, j, statuses[i]); w != nil {
			writes = append(writes, w)
		}
	}
	if s.record(writes) {
		kick(s.finishKick)
	}
	return next
}

// jobWrite is one job's answer to record: the store change, and what follows
// once it is recorded (done, which reports whether the job ended).
type jobWrite struct {
	j      store.ActiveJob
	change store.CalcChange
	done   func(after store.Calculation) bool
}

// record writes a poll cycle's changes in one store transaction (one fsync,
// not one per changed job) and reports whether a job ended. The transaction is
// all or nothing, so when it fails (a job changed meanwhile, by a cancel for
// instance, or one record cannot be written) each change is made again on its
// own, and the others are recorded as if they had never been batched.
func (s *Scheduler) record(writes []*jobWrite) bool {
	if len(writes) == 0 {
		return false
	}
	changes := make([]store.CalcChange, len(writes))
	for i, w := range writes {
		changes[i] = w.change
	}
	afters, err := s.st.ChangeCalcs(changes)
	if err != nil {
		afters = make([]store.Calculation, len(writes))
		for i, w := range writes {
			var err error
			if ch := w.change; ch.To != "" {
				afters[i], err = s.st.Transition(ch.ID, ch.To, ch.Note, ch.Mutate)
			} else {
				afters[i], err = s.st.UpdateCalc(ch.ID, ch.Mutate)
			}
			if err != nil {
				if !errors.Is(err, errStale) {
					s.log.Error("record job state", "calc", w.j.ID, "job", w.j.JobID, "err", err)
				}
				writes[i] = nil
			}
		}
	}
	ended := false
	for i, w := range writes {
		if w == nil {
			continue
		}
		if w.done(afters[i]) {
			ended = true
		}
		s.changed(w.j.ID)
	}
	return ended
}

// maxJobNote caps the scheduler's reason and node kept for a job, in bytes.
const maxJobNote = 200

// changed tells a Watcher notifier that calculation id changed.
func (s *Scheduler) changed(id uint64) {
	if w, ok := s.notifier.(Watcher); ok {
		w.Changed(id)
	}
}

// activeCalc reads j's whole record; ok is false when it cannot be read or is
// no longer an active job of cluster c.
func (s *Scheduler) activeCalc(c *clusterState, j store.ActiveJob) (store.Calculation, bool) {
	calc, err := s.st.Calc(j.ID)
	if err != nil {
		s.log.Error("read calculation", "calc", j.ID, "cluster", c.label(), "err", err)
		return calc, false
	}
	return calc, calc.State.Active() && calc.Cluster == c.label()
}

// pollFailed handles a failed poll. A refused login ends every active calculation
// in error (an admin's retry resubmits nothing: Submit finds the job again).
// Otherwise the cluster is unreachable: after the poll grace, each calculation
// starts waiting (the user is told once), and past give_up_after it ends in error.
func (s *Scheduler) pollFailed(ctx context.Context, c *clusterState, jobs []store.ActiveJob, err error, next time.Duration) time.Duration {
	if plugins.KindOf(err) == plugins.KindAuth {
		for _, j := range jobs {
			if calc, ok := s.activeCalc(c, j); ok {
				s.toError(ctx, calc, CodeAuthFailed, fmt.Sprintf("cluster %s refused the bot's login while polling job %s; an admin must fix the key or host key, then retry: %v", c.label(), calc.JobID, err))
			}
		}
		return next
	}
	now := s.now()
	c.mu.Lock()
	if c.downSince.IsZero() {
		c.downSince = now
	}
	c.pollFails++
	since, fails := c.downSince, c.pollFails
	c.mu.Unlock()
	s.log.Warn("poll failed", "cluster", c.label(), "jobs", len(jobs), "failures", fails, "err", err)
	wait := max(next, s.backoff(fails))
	if now.Sub(since) < s.pollGrace {
		return wait
	}
	cause := fmt.Errorf("poll %s: %w", c.label(), err)
	for _, j := range jobs {
		var calc store.Calculation
		loaded := false
		if j.WaitingSince.IsZero() {
			c2, err := s.st.UpdateCalc(j.ID, func(_ *store.Tx, c *store.Calculation) error {
				if c.State != j.State {
					return errStale
				}
				if c.WaitingSince.IsZero() {
					c.WaitingSince = since
				}
				return nil
			})
			if err != nil {
				continue
			}
			calc, loaded = c2, true
			j.WaitingSince, j.WaitNotified = c2.WaitingSince, c2.WaitNotified
		}
		giveUp := now.Sub(j.WaitingSince) >= s.cfg.GiveUpAfter
		if !giveUp && j.WaitNotified {
			continue // waiting, and the user knows: nothing to read or write
		}
		if !loaded {
			var ok bool
			if calc, ok = s.activeCalc(c, j); !ok {
				continue
			}
		}
		if giveUp {
			s.toError(ctx, calc, CodeGaveUp, fmt.Sprintf("%s since %s, gave up after %s: %v",
				codeText(CodeClusterUnreachable), calc.WaitingSince.UTC().Format(time.RFC3339), s.cfg.GiveUpAfter, cause))
			continue
		}
		if !calc.WaitNotified {
			s.tellWaiting(ctx, calc, CodeClusterUnreachable, cause)
		}
	}
	return wait
}

// stateOf maps a plugin state to the store's; ok is false for StateLost (keep polling).
func stateOf(p plugins.State) (st store.State, unknown, ok bool) {
	switch p {
	case plugins.StatePending:
		return store.StatePending, false, true
	case plugins.StateRunning:
		return store.StateRunning, false, true
	case plugins.StateSucceeded:
		return store.StateSucceeded, false, true
	case plugins.StateFailed:
		return store.StateFailed, false, true
	case plugins.StateCancelled:
		return store.StateCancelled, false, true
	case plugins.StateTimedOut:
		return store.StateTimedOut, false, true
	case plugins.StateUnknown:
		// Finished, outcome unknown: never succeeded. It is delivered as failed
		// with Code outcome_unknown, so the user looks at the output.
		return store.StateFailed, true, true
	}
	return "", false, false
}

// apply turns one job's status into its write for record, or nil when nothing
// changed. j comes from the active index; the whole record is read only by the
// store's write, inside its transaction.
func (s *Scheduler) apply(ctx context.Context, j store.ActiveJob, js plugins.JobStatus) *jobWrite {
	to, unknown, ok := stateOf(js.State)
	if !ok {
		if js.State != plugins.StateLost {
			s.log.Warn("poll: unknown job state", "calc", j.ID, "job", j.JobID, "state", js.State)
		}
		return nil
	}
	resumed := !j.WaitingSince.IsZero()
	moving := to != j.State && store.CanTransition(j.State, to)
	// The scheduler's reason (Slurm's pending reason) and the job's node,
	// shown on the calculation's card, are kept while the job is on the
	// cluster; compared with the active index, so that an unchanged answer
	// writes nothing.
	reason, node := "", ""
	if to.Active() {
		reason, node = oneLine(js.Reason, maxJobNote), oneLine(js.Node, maxJobNote)
	}
	if !moving && js.Raw == j.RawState && !resumed && reason == j.Reason && node == j.Node {
		return nil
	}
	var before store.Calculation
	mutate := func(_ *store.Tx, c *store.Calculation) error {
		if c.State != j.State {
			return errStale
		}
		before = *c
		c.RawState = js.Raw
		c.Progress.Reason, c.Progress.Node = reason, node
		clearWait(c)
		if moving {
			if js.ExitCode != nil {
				code := *js.ExitCode
				c.ExitCode = &code
			}
			if unknown {
				c.Progress.OutcomeUnknown = true
			}
			if !js.Started.IsZero() {
				c.Progress.Started = js.Started.UTC()
			}
			if !js.Ended.IsZero() {
				c.Progress.Ended = js.Ended.UTC()
			}
			if to.Ended() {
				c.Usage = jobUsage(*c, js, s.now())
			}
		}
		return nil
	}
	w := &jobWrite{j: j, change: store.CalcChange{ID: j.ID, Mutate: mutate}}
	if moving {
		note := "job " + j.JobID + ": " + js.Raw
		if js.ExitCode != nil && !strings.Contains(js.Raw, "exit") {
			note += fmt.Sprintf(", exit %d", *js.ExitCode)
		}
		if js.Reason != "" {
			note += " (" + oneLine(js.Reason, 200) + ")"
		}
		w.change.To, w.change.Note = to, note
	}
	w.done = func(after store.Calculation) bool {
		if resumed {
			s.tellResumed(ctx, before, after)
		}
		if moving {
			s.log.Info("job state", "calc", j.ID, "cluster", after.Cluster, "job", j.JobID, "state", to, "raw", js.Raw)
		}
		return after.State.Ended()
	}
	return w
}
