package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
	"hpcbot/store"
)

// clusterLoop is a cluster's worker: it stages and submits calculations as they
// arrive (Wake) or when their retry is due, and polls the cluster's active jobs
// every fetch_time. It is the only goroutine that stages, submits and polls on
// this cluster, so a slow or unreachable cluster delays nothing but itself.
func (s *Scheduler) clusterLoop(ctx context.Context, c *clusterState) {
	intake := time.NewTimer(0) // resume received and staged calculations at once
	poll := time.NewTimer(0)   // and poll the active ones
	defer intake.Stop()
	defer poll.Stop()
	var pollDue time.Time // when the poll timer fires; zero: at once
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-intake.C:
		case <-c.pollNow:
			poll.Reset(0)
			pollDue = time.Time{}
			continue
		case <-poll.C:
			d := s.pollPass(ctx, c)
			poll.Reset(d)
			pollDue = time.Now().Add(d)
			continue
		}
		intake.Stop()
		if next := s.intakePass(ctx, c, pollDue); next > 0 {
			intake.Reset(next)
		}
	}
}

// intakePass stages and submits this cluster's received and staged calculations
// whose retry is due (or that were just woken). It returns when the next one is
// due (0: none waits). A burst of submissions does not hold up polling: once
// pollDue has passed (wall clock; zero: never) it stops after the calculation in
// hand and asks to be called again at once, so the loop polls in between.
func (s *Scheduler) intakePass(ctx context.Context, c *clusterState, pollDue time.Time) time.Duration {
	if d := c.drainState(); d.Drained {
		s.holdDrained(ctx, c, d)
		return 0 // Undrain kicks the loop
	}
	calcs, err := s.intakeCalcs(c)
	if err != nil {
		s.log.Error("read calculations", "cluster", c.label(), "err", err)
		return s.backoffBase
	}
	for _, calc := range calcs {
		if ctx.Err() != nil {
			return 0
		}
		_, woken := s.woken.LoadAndDelete(calc.ID)
		if calc.NextTry.After(s.now()) && !woken {
			continue
		}
		s.safely(calc.ID, func() { s.intake(ctx, c, calc.ID) })
		if !pollDue.IsZero() && !time.Now().Before(pollDue) {
			return time.Millisecond
		}
	}
	// What is left waits for its retry.
	calcs, err = s.intakeCalcs(c)
	if err != nil {
		return s.backoffBase
	}
	var next time.Duration
	for _, calc := range calcs {
		wait := max(calc.NextTry.Sub(s.now()), time.Millisecond)
		if next == 0 || wait < next {
			next = wait
		}
	}
	return min(next, maxIntakeWait)
}

// intakeCalcs are the cluster's calculations in received and staged.
func (s *Scheduler) intakeCalcs(c *clusterState) ([]store.Calculation, error) {
	calcs, err := s.st.CalcsByState(store.StateReceived, store.StateStaged)
	out := calcs[:0]
	for _, calc := range calcs {
		if calc.Cluster == c.label() {
			out = append(out, calc)
		}
	}
	return out, err
}

// intake does the intake steps of one calculation: received → Stage → staged →
// Submit → submitted, then tells the user (EventAccepted).
func (s *Scheduler) intake(ctx context.Context, c *clusterState, id uint64) {
	if !s.claim(id) {
		return
	}
	defer s.release(id)
	calc, err := s.st.Calc(id)
	if err != nil {
		s.log.Error("read calculation", "calc", id, "err", err)
		return
	}
	if calc.Cluster != c.label() || (calc.State != store.StateReceived && calc.State != store.StateStaged) {
		return
	}
	if c.drainState().Drained {
		return // drained since the pass began; holdDrained sees it next
	}
	calc = s.undrained(calc)
	log := s.log.With("calc", id, "user", calc.UserID, "cluster", c.label())
	if calc.State == store.StateReceived && calc.Progress.Cancel != store.CancelNone {
		s.cancelBeforeJob(calc)
		return
	}
	sctx, done := s.stepContext(ctx)
	defer done()

	if calc.State == store.StateReceived {
		if _, err := os.Stat(filepath.Join(calc.LocalDir, calc.InputName)); err != nil {
			s.inputMissing(ctx, calc, err)
			return
		}
		if !s.checkInput(sctx, c, &calc) {
			return
		}
		err := c.sched.Stage(sctx, plugins.StageRequest{CalcID: id, LocalDir: calc.LocalDir, Folder: calc.Folder})
		c.health(err)
		if err != nil {
			s.intakeFailed(ctx, c, calc, "stage", err)
			return
		}
		note := "staged on " + c.label()
		if from := calc.Progress.FailoverFrom; from != "" {
			note += " after failover from " + from
		}
		before := calc
		calc, err = s.st.Transition(id, store.StateStaged, note, func(_ *store.Tx, c *store.Calculation) error {
			if c.State != store.StateReceived {
				return errStale
			}
			clearWait(c)
			if round(*c) > 1 { // an admin's retry: forget the last round's bookkeeping
				c.Progress = store.Progress{Cancel: c.Progress.Cancel, FailoverFrom: c.Progress.FailoverFrom}
			}
			return nil
		})
		if err != nil {
			log.Error("record staged", "err", err)
			return
		}
		log.Info("staged")
		s.tellResumed(ctx, before, calc)
		if calc.Progress.Cancel != store.CancelNone {
			// Cancelled while staging: this claim came from received, so no
			// Submit was ever tried and there is no job.
			s.cancelBeforeJob(calc)
			return
		}
	}

	req := plugins.SubmitRequest{
		CalcID:    id,
		Folder:    calc.Folder,
		Argv:      calc.Argv,
		Launch:    calc.Launch,
		Resources: calc.Resources,
		JobName:   jobName(id),
		Comment:   s.comment(calc),
	}
	res, err := c.sched.Submit(sctx, req)
	if plugins.KindOf(err) == plugins.KindNotFound {
		// The folder vanished from the cluster since staging: stage again, once.
		log.Warn("calculation folder missing on the cluster; staging again", "err", err)
		if err = c.sched.Stage(sctx, plugins.StageRequest{CalcID: id, LocalDir: calc.LocalDir, Folder: calc.Folder}); err == nil {
			res, err = c.sched.Submit(sctx, req)
		}
	}
	c.health(err)
	if err != nil {
		s.intakeFailed(ctx, c, calc, "submit", err)
		return
	}
	note := "job " + res.JobID
	if res.Existing {
		note += " (found from an earlier submission)"
	}
	before := calc
	calc, err = s.st.Transition(id, store.StateSubmitted, note, func(_ *store.Tx, c *store.Calculation) error {
		if c.State != store.StateStaged {
			return errStale
		}
		c.JobID = res.JobID
		clearWait(c)
		return nil
	})
	if err != nil {
		// The job runs but is not recorded: the next intake finds it again
		// (Submit is idempotent), unless the calculation moved on meanwhile.
		log.Error("record submitted", "job", res.JobID, "err", err)
		return
	}
	c.mu.Lock()
	c.submissions++
	c.mu.Unlock()
	log.Info("submitted", "job", res.JobID, "existing", res.Existing)
	s.tellResumed(ctx, before, calc)
	s.tellAccepted(ctx, calc)
	if calc.Progress.Cancel == store.CancelRequested {
		s.cancelJob(sctx, c, calc)
	}
}

// inputMissing handles a received calculation without its input file. Accept
// writes the input before it creates the record, so the input was removed
// from download_path; a record created by other means may still wait for it.
// Within the input grace of its creation it is looked at again after the
// backoff, or at once when Wake says the input is there; past the grace the
// input is lost: error.
func (s *Scheduler) inputMissing(ctx context.Context, calc store.Calculation, cause error) {
	if s.now().Sub(calc.Created) < s.inputGrace {
		if _, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, c *store.Calculation) error {
			if c.State != store.StateReceived {
				return errStale
			}
			c.NextTry = s.now().Add(s.backoff(1))
			return nil
		}); err != nil && !errors.Is(err, errStale) {
			s.log.Error("record retry", "calc", calc.ID, "err", err)
		}
		return
	}
	s.toError(ctx, calc, CodeInputMissing, fmt.Sprintf("input file %s is missing from %s: %v", calc.InputName, calc.LocalDir, cause))
}

// jobName is the job's name on the cluster, hpcbot's idempotency key there.
func jobName(id uint64) string { return fmt.Sprintf("hpcbot-%d", id) }

// comment is the job's comment: who it is for.
func (s *Scheduler) comment(calc store.Calculation) string {
	org := ""
	if u, err := s.st.User(calc.UserID); err == nil {
		org = u.Org
	}
	if org == "" {
		org = "-"
	}
	return fmt.Sprintf("hpcbot user=%d org=%s", calc.UserID, org)
}

// tellAccepted queues EventAccepted once and records that it did.
func (s *Scheduler) tellAccepted(ctx context.Context, calc store.Calculation) {
	if calc.Progress.Accepted {
		return
	}
	if err := s.notifier.Notify(ctx, Notification{Key: notifyKey(calc, EventAccepted), Event: EventAccepted, Calc: calc}); err != nil {
		s.log.Warn("notify accepted", "calc", calc.ID, "err", err)
		return
	}
	if _, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, c *store.Calculation) error {
		c.Progress.Accepted = true
		return nil
	}); err != nil {
		s.log.Error("record accepted notice", "calc", calc.ID, "err", err)
	}
}

// intakeFailed handles a failed Stage or Submit: shutting down → nothing (it is
// redone); unreachable or refused at staging → fail over to another cluster when
// allowed; otherwise a transient error waits and a permanent one ends in error.
func (s *Scheduler) intakeFailed(ctx context.Context, c *clusterState, calc store.Calculation, step string, err error) {
	if ctx.Err() != nil {
		return
	}
	kind := plugins.KindOf(err)
	if calc.State == store.StateReceived && (kind == plugins.KindTransient || kind == plugins.KindAuth) {
		if s.failover(ctx, c, calc, err) {
			return
		}
	}
	switch kind {
	case plugins.KindTransient:
		s.retryLater(ctx, calc, CodeClusterUnreachable, fmt.Errorf("%s on %s: %w", step, c.label(), err), 0)
	case plugins.KindAuth:
		s.toError(ctx, calc, CodeAuthFailed, fmt.Sprintf("cluster %s refused the bot's login (%s); an admin must fix the key or host key, then retry: %v", c.label(), step, err))
	default:
		s.toError(ctx, calc, CodeSubmitRejected, fmt.Sprintf("%s on %s failed: %v", step, c.label(), err))
	}
}

// failover moves a calculation that could not be staged to the next cluster, in
// configuration order, that is not known to be failing and one of whose runners
// accepts the same program and arguments, when its runner rule allows failover.
// It reports whether it moved the calculation.
func (s *Scheduler) failover(ctx context.Context, from *clusterState, calc store.Calculation, cause error) bool {
	if !from.cfg.FailoverAllowed(ruleFor(from.cfg, calc.Program)) {
		return false
	}
	// The caption that gives this argv again: the program and its arguments, with
	// the input file named as itself (runners read it as the input).
	caption := shellquote.Join(calc.Argv)
	for _, to := range s.clusters {
		if to == from || !to.usable() {
			continue
		}
		for i, r := range to.runners {
			plan, err := r.Plan(ctx, plugins.PlanRequest{FileName: calc.InputName, Caption: caption})
			if err != nil {
				continue
			}
			runner := s.runnerName(ctx, to, i)
			why := oneLine(cause.Error(), defaultFailoverNoteSize)
			_, err = s.st.UpdateCalc(calc.ID, func(tx *store.Tx, c *store.Calculation) error {
				if c.State != store.StateReceived || c.Cluster != from.label() {
					return errStale
				}
				c.Cluster, c.Runner, c.Program, c.Argv, c.Launch = to.label(), runner, plan.Program, plan.Argv, plan.Launch
				c.Resources, c.ResultExtensions, c.ResultFiles = plan.Resources, plan.Extensions, plan.Files
				c.Attempts, c.NextTry = 0, time.Time{}
				c.Progress.FailoverFrom = from.label()
				_, err := tx.AddEvent(store.Event{Action: actionFailover, Subject: c.Subject(),
					Detail: fmt.Sprintf("from %s to %s: %s", from.label(), to.label(), why)})
				return err
			})
			if err != nil {
				if !errors.Is(err, errStale) {
					s.log.Error("record failover", "calc", calc.ID, "err", err)
				}
				return errors.Is(err, errStale)
			}
			s.log.Warn("failover", "calc", calc.ID, "from", from.label(), "cluster", to.label(), "err", cause)
			kick(to.kick)
			return true
		}
	}
	return false
}

// ruleFor is the first runner rule of cc for program (the zero rule if none).
func ruleFor(cc ClusterConfig, program string) plugins.RunnerRule {
	for _, r := range cc.Runners {
		if r.Program == program {
			return r
		}
	}
	return plugins.RunnerRule{}
}

// oneLine squeezes s onto one line of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
