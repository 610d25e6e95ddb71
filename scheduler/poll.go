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

// activeStates are the states in which the cluster has the job.
var activeStates = []store.State{store.StateSubmitted, store.StatePending, store.StateRunning}

// pollPass asks the cluster about all its active jobs with one plugin Poll and
// applies the answers. It returns the pause before the next poll: fetch_time,
// or the backoff while the cluster fails.
func (s *Scheduler) pollPass(ctx context.Context, c *clusterState) time.Duration {
	next := s.cfg.FetchTime.Next()
	all, err := s.st.CalcsByState(activeStates...)
	if err != nil {
		s.log.Error("read calculations", "cluster", c.label(), "err", err)
		return next
	}
	calcs := all[:0]
	for _, calc := range all {
		if calc.Cluster == c.label() {
			calcs = append(calcs, calc)
		}
	}
	if len(calcs) == 0 {
		return next
	}
	sctx, done := s.stepContext(ctx)
	defer done()
	// Redo what a crash may have cut short: the accepted notice, a cancel request.
	for _, calc := range calcs {
		s.tellAccepted(ctx, calc)
		if calc.Delivery[dCancel] == cancelReq {
			s.cancelJob(sctx, c, calc)
		}
	}
	refs := make([]plugins.JobRef, len(calcs))
	for i, calc := range calcs {
		refs[i] = plugins.JobRef{CalcID: calc.ID, JobID: calc.JobID, Folder: calc.Folder, Launch: calc.Launch}
	}
	statuses, err := c.sched.Poll(sctx, refs)
	if err == nil && len(statuses) != len(refs) {
		err = plugins.Errorf(plugins.KindTransient, "poll: %d answers for %d jobs", len(statuses), len(refs))
	}
	c.health(err)
	if err != nil {
		if ctx.Err() != nil {
			return next
		}
		return s.pollFailed(ctx, c, calcs, err, next)
	}
	c.mu.Lock()
	c.downSince, c.pollFails = time.Time{}, 0
	c.mu.Unlock()
	ended := false
	for i, calc := range calcs {
		if s.apply(ctx, calc, statuses[i]) {
			ended = true
		}
	}
	if ended {
		kick(s.finishKick)
	}
	return next
}

// pollFailed handles a failed poll. A refused login ends every active calculation
// in error (an admin's retry resubmits nothing: Submit finds the job again).
// Otherwise the cluster is unreachable: after the poll grace, each calculation
// starts waiting (the user is told once), and past give_up_after it ends in error.
func (s *Scheduler) pollFailed(ctx context.Context, c *clusterState, calcs []store.Calculation, err error, next time.Duration) time.Duration {
	if plugins.KindOf(err) == plugins.KindAuth {
		for _, calc := range calcs {
			s.toError(ctx, calc, CodeAuthFailed, fmt.Sprintf("cluster %s refused the bot's login while polling job %s; an admin must fix the key or host key, then retry: %v", c.label(), calc.JobID, err))
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
	s.log.Warn("poll failed", "cluster", c.label(), "jobs", len(calcs), "failures", fails, "err", err)
	wait := max(next, s.backoff(fails))
	if now.Sub(since) < s.pollGrace {
		return wait
	}
	cause := fmt.Errorf("poll %s: %w", c.label(), err)
	for _, calc := range calcs {
		if calc.WaitingSince.IsZero() {
			c2, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, c *store.Calculation) error {
				if c.State != calc.State {
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
			calc = c2
		}
		if now.Sub(calc.WaitingSince) >= s.cfg.GiveUpAfter {
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

// apply records one job's status; it writes only when something changed and
// reports whether the job ended.
func (s *Scheduler) apply(ctx context.Context, calc store.Calculation, js plugins.JobStatus) bool {
	to, unknown, ok := stateOf(js.State)
	if !ok {
		if js.State != plugins.StateLost {
			s.log.Warn("poll: unknown job state", "calc", calc.ID, "job", calc.JobID, "state", js.State)
		}
		return false
	}
	resumed := !calc.WaitingSince.IsZero()
	moving := to != calc.State && store.CanTransition(calc.State, to)
	if !moving && js.Raw == calc.RawState && !resumed {
		return false
	}
	mutate := func(_ *store.Tx, c *store.Calculation) error {
		if c.State != calc.State {
			return errStale
		}
		c.RawState = js.Raw
		clearWait(c)
		if moving {
			if js.ExitCode != nil {
				code := *js.ExitCode
				c.ExitCode = &code
			}
			if unknown {
				setD(c, dOutcome, outcomeUnknown)
			}
			if !js.Started.IsZero() {
				setD(c, dStarted, js.Started.UTC().Format(time.RFC3339))
			}
			if !js.Ended.IsZero() {
				setD(c, dEnded, js.Ended.UTC().Format(time.RFC3339))
			}
		}
		return nil
	}
	var after store.Calculation
	var err error
	if moving {
		note := "job " + calc.JobID + ": " + js.Raw
		if js.ExitCode != nil && !strings.Contains(js.Raw, "exit") {
			note += fmt.Sprintf(", exit %d", *js.ExitCode)
		}
		if js.Reason != "" {
			note += " (" + oneLine(js.Reason, 200) + ")"
		}
		after, err = s.st.Transition(calc.ID, to, note, mutate)
	} else {
		after, err = s.st.UpdateCalc(calc.ID, mutate)
	}
	if err != nil {
		if !errors.Is(err, errStale) {
			s.log.Error("record job state", "calc", calc.ID, "job", calc.JobID, "err", err)
		}
		return false
	}
	if resumed {
		s.tellResumed(ctx, calc, after)
	}
	if moving {
		s.log.Info("job state", "calc", calc.ID, "cluster", calc.Cluster, "job", calc.JobID, "state", to, "raw", js.Raw)
	}
	return after.State.Ended()
}
