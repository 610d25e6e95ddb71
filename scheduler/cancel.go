package scheduler

import (
	"context"
	"errors"
	"fmt"

	"hpcbot/plugins"
	"hpcbot/store"
)

// ErrFinished is returned by Cancel for a calculation whose job has already ended
// (or that ended in error): there is nothing left to stop.
var ErrFinished = errors.New("calculation already finished")

// Cancel stops a calculation for the bot's /cancel. The request is stored
// first, so it survives a restart and a worker in the middle of submitting sees
// it. Then:
//   - received (nothing on the cluster yet): it becomes cancelled at once, unless
//     its worker is staging it right now; that worker then cancels it instead of
//     submitting;
//   - staged: an earlier Submit may have launched a job that was never recorded
//     (a crash, a lost answer), so the worker submits it (Submit is idempotent and
//     finds that job) and cancels the job at once: no job is ever left running
//     untracked. While the cluster is unreachable this waits like any intake;
//   - submitted, pending or running: the plugin cancels the job; the next poll
//     sees it cancelled and its outputs are delivered like any finished job's.
//     When the cluster cannot be reached the request stays stored and the
//     worker sends it again every poll.
//
// A nil error means cancelled or cancellation under way; the user hears the end
// through the Notifier (EventCancelled before a job, else EventFinished).
// ErrFinished (wrapped) for a calculation already ended; store.ErrNotFound for
// an unknown id.
func (s *Scheduler) Cancel(ctx context.Context, id uint64) error {
	calc, err := s.st.UpdateCalc(id, func(_ *store.Tx, c *store.Calculation) error {
		if c.State != store.StateReceived && c.State != store.StateStaged && !c.State.Active() {
			return fmt.Errorf("calc %d is %s: %w", c.ID, c.State, ErrFinished)
		}
		if c.Progress.Cancel == store.CancelNone {
			c.Progress.Cancel = store.CancelRequested
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	c := s.byLabel[calc.Cluster]
	switch calc.State {
	case store.StateReceived:
		if !s.claim(id) {
			return nil // its worker holds it and will see the request
		}
		defer s.release(id)
		fresh, err := s.st.Calc(id)
		if err != nil {
			return fmt.Errorf("cancel: %w", err)
		}
		if fresh.State == store.StateReceived {
			s.cancelBeforeJob(fresh)
			return nil
		}
		calc = fresh
	case store.StateStaged:
		// A Submit may have launched the job just before a crash or a lost
		// answer: only the worker's idempotent Submit can tell. It submits (or
		// finds the job) and cancels it at once.
		if c != nil {
			s.woken.Store(id, struct{}{})
			kick(c.kick)
		}
		return nil
	}
	if c == nil || !calc.State.Active() || calc.Progress.Cancel == store.CancelSent {
		return nil
	}
	return s.cancelJob(ctx, c, calc)
}

// cancelBeforeJob ends a calculation that certainly has no job in cancelled:
// one in received, or one its caller just staged from received (no Submit was
// ever tried). The finisher then tells the user (EventCancelled). The caller
// holds its claim.
func (s *Scheduler) cancelBeforeJob(calc store.Calculation) {
	_, err := s.st.Transition(calc.ID, store.StateCancelled, "cancelled before submission", func(_ *store.Tx, c *store.Calculation) error {
		if c.State != calc.State || (c.State != store.StateReceived && c.State != store.StateStaged) {
			return errStale
		}
		clearWait(c)
		return nil
	})
	if err != nil {
		if !errors.Is(err, errStale) {
			s.log.Error("record cancel", "calc", calc.ID, "err", err)
		}
		return
	}
	s.log.Info("cancelled before submission", "calc", calc.ID, "cluster", calc.Cluster)
	kick(s.finishKick)
}

// cancelJob asks the plugin to stop calc's job and records that it did. A
// transient failure leaves the request for the next poll.
func (s *Scheduler) cancelJob(ctx context.Context, c *clusterState, calc store.Calculation) error {
	err := c.sched.Cancel(ctx, plugins.JobRef{CalcID: calc.ID, JobID: calc.JobID, Folder: calc.Folder, Launch: calc.Launch})
	c.health(err)
	if err != nil {
		if plugins.IsTransient(err) {
			s.log.Warn("cancel job: will retry at the next poll", "calc", calc.ID, "cluster", c.label(), "job", calc.JobID, "err", err)
			return nil
		}
		return fmt.Errorf("cancel job %s on %s: %w", calc.JobID, c.label(), err)
	}
	if _, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, c *store.Calculation) error {
		c.Progress.Cancel = store.CancelSent
		return nil
	}); err != nil {
		s.log.Error("record cancel", "calc", calc.ID, "err", err)
	}
	s.log.Info("job cancelled", "calc", calc.ID, "cluster", c.label(), "job", calc.JobID)
	kick(c.pollNow)
	return nil
}
