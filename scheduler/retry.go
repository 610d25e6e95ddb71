package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"hpcbot/internal/backoff"
	"hpcbot/store"
)

// errStale: the calculation moved on (another goroutine, a cancel) since it was read.
var errStale = errors.New("calculation changed meanwhile")

// clearWait resets the retry bookkeeping of a step that succeeded.
func clearWait(c *store.Calculation) {
	c.Attempts, c.NextTry, c.WaitingSince, c.WaitNotified = 0, time.Time{}, time.Time{}, false
}

// backoff is the wait before retry number attempts (1, 2, ...): exponential from
// backoffBase, capped at backoffMax, with jitter so that calculations waiting
// on one cluster do not retry in lockstep.
func (s *Scheduler) backoff(attempts int) time.Duration {
	return backoff.Delay(s.backoffBase, s.backoffMax, attempts)
}

// retryLater records a transient failure of the step of calc's state: one more
// attempt, the next try after the backoff (at least minWait), the start of the
// wait on the first failure. The user is told once per wait (EventWaiting with
// code, when code is not ""); past give_up_after the calculation goes to error.
func (s *Scheduler) retryLater(ctx context.Context, calc store.Calculation, code string, cause error, minWait time.Duration) {
	now := s.now()
	gaveUp := false
	c, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, c *store.Calculation) error {
		if c.State != calc.State {
			return errStale
		}
		c.Attempts++
		if c.WaitingSince.IsZero() {
			c.WaitingSince = now
		}
		if now.Sub(c.WaitingSince) >= s.cfg.GiveUpAfter {
			gaveUp = true
			return nil
		}
		c.NextTry = now.Add(max(s.backoff(c.Attempts), minWait))
		return nil
	})
	if err != nil {
		if !errors.Is(err, errStale) {
			s.log.Error("record retry", "calc", calc.ID, "err", err)
		}
		return
	}
	log := s.log.With("calc", c.ID, "cluster", c.Cluster, "state", c.State)
	if gaveUp {
		s.toError(ctx, c, CodeGaveUp, fmt.Sprintf("%s since %s, gave up after %s: %v",
			codeText(code), c.WaitingSince.UTC().Format(time.RFC3339), s.cfg.GiveUpAfter, cause))
		return
	}
	log.Warn("step failed; will retry", "attempt", c.Attempts, "next_try", c.NextTry.Format(time.RFC3339), "err", cause)
	if code == "" || c.WaitNotified {
		return
	}
	s.tellWaiting(ctx, c, code, cause)
}

// tellWaiting queues EventWaiting once per wait (the key holds the wait's start).
func (s *Scheduler) tellWaiting(ctx context.Context, c store.Calculation, code string, cause error) {
	n := Notification{
		Key:    fmt.Sprintf(waitingKeyFormat, c.ID, EventWaiting, c.WaitingSince.Unix()),
		Event:  EventWaiting,
		Calc:   c,
		Code:   code,
		Reason: cause.Error(),
		Since:  c.WaitingSince,
	}
	if err := s.notifier.Notify(ctx, n); err != nil {
		s.log.Warn("notify waiting", "calc", c.ID, "err", err)
		return
	}
	since := c.WaitingSince
	if _, err := s.st.UpdateCalc(c.ID, func(_ *store.Tx, c *store.Calculation) error {
		if !c.WaitingSince.Equal(since) {
			return errStale
		}
		c.WaitNotified = true
		return nil
	}); err != nil && !errors.Is(err, errStale) {
		s.log.Error("record waiting notice", "calc", c.ID, "err", err)
	}
}

// tellResumed queues EventResumed after a wait the user was told about.
// before is the calculation as it was while waiting. Best effort: a crash
// here loses only this message, and the next one (accepted, finished) follows.
func (s *Scheduler) tellResumed(ctx context.Context, before, after store.Calculation) {
	if !before.WaitNotified || before.WaitingSince.IsZero() {
		return
	}
	n := Notification{
		Key:   fmt.Sprintf(waitingKeyFormat, after.ID, EventResumed, before.WaitingSince.Unix()),
		Event: EventResumed,
		Calc:  after,
		Since: before.WaitingSince,
	}
	if err := s.notifier.Notify(ctx, n); err != nil {
		s.log.Warn("notify resumed", "calc", after.ID, "err", err)
	}
}

// toError moves calc to error with a code and a reason a person can act on,
// then tells the user and the log chat. A calculation already final is left alone.
func (s *Scheduler) toError(ctx context.Context, calc store.Calculation, code, reason string) {
	c, err := s.st.Transition(calc.ID, store.StateError, reason, func(_ *store.Tx, c *store.Calculation) error {
		if c.State.Final() {
			return errStale
		}
		c.Error = reason
		c.Progress.ErrorCode, c.Progress.ErrorNotified = code, false
		c.NextTry = time.Time{}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errStale) && !errors.Is(err, store.ErrBadTransition) {
			s.log.Error("record error state", "calc", calc.ID, "err", err)
		}
		return
	}
	s.log.Error("calculation failed", "calc", c.ID, "user", c.UserID, "cluster", c.Cluster, "job", c.JobID, "code", code, "reason", reason)
	s.tellError(ctx, c)
}

// tellError queues EventError for a calculation in error and records that it did.
func (s *Scheduler) tellError(ctx context.Context, c store.Calculation) {
	n := errorNotice(c)
	n.Tail = s.tail(c)
	if err := s.notifier.Notify(ctx, n); err != nil {
		s.log.Warn("notify error", "calc", c.ID, "err", err)
		return
	}
	if _, err := s.st.UpdateCalc(c.ID, func(_ *store.Tx, c *store.Calculation) error {
		c.Progress.ErrorNotified = true
		return nil
	}); err != nil {
		s.log.Error("record error notice", "calc", c.ID, "err", err)
	}
}

// errorNotice is EventError for a calculation in error, without the tail.
func errorNotice(c store.Calculation) Notification {
	return Notification{
		Key:     notifyKey(c, EventError),
		Event:   EventError,
		Calc:    c,
		Code:    c.Progress.ErrorCode,
		Reason:  c.Error,
		Refusal: refusalOf(c),
	}
}

// codeText is the English of a waiting code for reasons and logs.
func codeText(code string) string {
	switch code {
	case CodeClusterUnreachable:
		return "cluster unreachable"
	case CodeCloudUnavailable:
		return "cloud storage unavailable"
	case CodeFetchFailed:
		return "results could not be fetched"
	}
	return "waiting"
}
