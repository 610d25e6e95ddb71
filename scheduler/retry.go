package scheduler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// Keys of Calculation.Delivery, the scheduler's durable bookkeeping besides the
// store's own fields. Each is written in the transaction of the step it records.
const (
	dCancel        = "cancel"         // "requested" by the user; "sent" once the plugin accepted it
	dAccepted      = "accepted"       // "1": EventAccepted was queued
	dFailoverFrom  = "failover_from"  // the cluster the calculation left at intake, and why
	dFiles         = "files"          // JSON list of fetched result files, relative to LocalDir
	dSkipped       = "skipped"        // JSON list of "path: reason" for files not fetched
	dOutcome       = "outcome"        // "unknown": the job ended but its exit status is unknown
	dStarted       = "started"        // job start as the plugin saw it (RFC 3339)
	dEnded         = "ended"          // job end as the plugin saw it (RFC 3339)
	dUpload        = "upload"         // nextcloud.UploadState of an upload in progress
	dSend          = "send"           // JSON list of local files the bot sends as documents
	dCode          = "code"           // Notification.Code of the finish (too_large)
	dWhere         = "where"          // too_large: where the results are on the cluster
	dErrorCode     = "error_code"     // Code of the error state
	dErrorNotified = "error_notified" // "1": EventError was queued
	dCleaned       = "cleaned"        // "1": the remote folder was removed
	dDrained       = "drained"        // held on a drained cluster since (RFC 3339); cleared when it goes on
	cancelReq      = "requested"
	cancelSent     = "sent"
	outcomeUnknown = "unknown"
)

// errStale: the calculation moved on (another goroutine, a cancel) since it was read.
var errStale = errors.New("calculation changed meanwhile")

// setD sets Delivery[k] = v on c without touching the map c shares with the
// record it was read from ("" deletes the key).
func setD(c *store.Calculation, k, v string) {
	m := maps.Clone(c.Delivery)
	if m == nil {
		m = map[string]string{}
	}
	if v == "" {
		delete(m, k)
	} else {
		m[k] = v
	}
	if len(m) == 0 {
		m = nil
	}
	c.Delivery = m
}

// clearWait resets the retry bookkeeping of a step that succeeded.
func clearWait(c *store.Calculation) {
	c.Attempts, c.NextTry, c.WaitingSince, c.WaitNotified = 0, time.Time{}, time.Time{}, false
}

// backoff is the wait before retry number attempts (1, 2, ...): exponential from
// backoffBase, capped at backoffMax, with "equal jitter" (half fixed, half random)
// so that calculations waiting on one cluster do not retry in lockstep.
func (s *Scheduler) backoff(attempts int) time.Duration {
	d := s.backoffBase
	for i := 1; i < attempts && d < s.backoffMax; i++ {
		d *= 2
	}
	d = min(d, s.backoffMax)
	half := d / 2
	return half + rand.N(half+1)
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
		setD(c, dErrorCode, code)
		setD(c, dErrorNotified, "")
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
	n := Notification{
		Key:    notifyKey(c, EventError),
		Event:  EventError,
		Calc:   c,
		Code:   c.Delivery[dErrorCode],
		Reason: c.Error,
		Tail:   s.tail(c),
	}
	if err := s.notifier.Notify(ctx, n); err != nil {
		s.log.Warn("notify error", "calc", c.ID, "err", err)
		return
	}
	if _, err := s.st.UpdateCalc(c.ID, func(_ *store.Tx, c *store.Calculation) error {
		setD(c, dErrorNotified, "1")
		return nil
	}); err != nil {
		s.log.Error("record error notice", "calc", c.ID, "err", err)
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

// clusterCode is the Code for a failure of a cluster step, by its kind.
func clusterCode(err error, permanent string) string {
	switch plugins.KindOf(err) {
	case plugins.KindAuth:
		return CodeAuthFailed
	case plugins.KindTransient:
		return CodeClusterUnreachable
	}
	return permanent
}
