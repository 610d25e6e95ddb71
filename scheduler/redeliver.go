package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler/nextcloud"
	"hpcbot/store"
)

// ErrNotHeld: Redeliver of a calculation whose results do not wait for a delivery.
var ErrNotHeld = errors.New("the calculation's results do not wait for a delivery")

// deliveryFailed records a failed cloud delivery (retrieved or
// delivery_failed → delivery_failed). The results stay in LocalDir and the
// calculation is not in error: a refusal of the bot's credentials (401, 403)
// holds it for an admin (/redeliver, or a restart after the configuration was
// fixed), because every failed login counts towards Nextcloud's brute-force
// protection; any other failure is retried with backoff, without giving up.
// The user and the log chat are told once when it starts to wait, and once
// more if it is then held.
func (s *Scheduler) deliveryFailed(ctx context.Context, calc store.Calculation, cause error) {
	now := s.now()
	held := plugins.KindOf(cause) == plugins.KindAuth
	wait, _ := nextcloud.RetryAfter(cause)
	tell := false
	c, err := s.st.Transition(calc.ID, store.StateDeliveryFailed, cause.Error(), func(_ *store.Tx, c *store.Calculation) error {
		if c.State != calc.State {
			return errStale
		}
		tell = !c.WaitNotified || (held && !c.Progress.DeliveryHeld)
		c.Attempts++
		if c.WaitingSince.IsZero() {
			c.WaitingSince = now
		}
		c.Progress.DeliveryHeld = held
		c.NextTry = time.Time{}
		if !held {
			c.NextTry = now.Add(max(s.backoff(c.Attempts), wait))
		}
		if fb := time.Duration(s.cfg.Storage.FallbackAfter); fb > 0 {
			at := c.WaitingSince.Add(fb)
			if at.Before(now) {
				at = now
			}
			if c.NextTry.IsZero() || at.Before(c.NextTry) {
				c.NextTry = at // then fallbackDue sends Telegram files
			}
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errStale) {
			s.log.Error("record delivery failure", "calc", calc.ID, "err", err)
		}
		return
	}
	code := CodeCloudUnavailable
	if held {
		code = CodeCloudRefused
		s.log.Error("cloud refused the bot's credentials; delivery held for an admin", "calc", c.ID, "err", cause)
	} else {
		s.log.Warn("delivery failed; will retry", "calc", c.ID, "attempt", c.Attempts, "next_try", c.NextTry.Format(time.RFC3339), "err", cause)
	}
	if !tell {
		return
	}
	state, _, _ := c.Outcome()
	n := Notification{
		Key:     notifyKey(c, EventDeliveryFailed) + "/" + code,
		Event:   EventDeliveryFailed,
		Calc:    c,
		Code:    code,
		Reason:  cause.Error(),
		Since:   c.WaitingSince,
		Outcome: state,
	}
	if err := s.notifier.Notify(ctx, n); err != nil {
		s.log.Warn("notify delivery failure", "calc", c.ID, "err", err)
		return
	}
	if _, err := s.st.UpdateCalc(c.ID, func(_ *store.Tx, c *store.Calculation) error {
		if c.State != store.StateDeliveryFailed {
			return errStale
		}
		c.WaitNotified = true
		return nil
	}); err != nil && !errors.Is(err, errStale) {
		s.log.Error("record delivery failure notice", "calc", c.ID, "err", err)
	}
}

// fallbackDue reports whether a calculation in delivery_failed has waited for
// the cloud longer than storage.fallback_after: its results go as Telegram
// files instead.
func (s *Scheduler) fallbackDue(calc store.Calculation) bool {
	fb := time.Duration(s.cfg.Storage.FallbackAfter)
	return fb > 0 && calc.State == store.StateDeliveryFailed && !calc.WaitingSince.IsZero() && !s.now().Before(calc.WaitingSince.Add(fb))
}

// Redeliver tries the delivery of a calculation in delivery_failed again at
// once (an admin's /redeliver): it lifts the hold and the backoff and wakes
// the delivery workers. ErrNotHeld when the calculation is in another state.
func (s *Scheduler) Redeliver(_ context.Context, id uint64) error {
	if _, err := s.st.UpdateCalc(id, func(_ *store.Tx, c *store.Calculation) error {
		if c.State != store.StateDeliveryFailed {
			return fmt.Errorf("calc %d is %s: %w", c.ID, c.State, ErrNotHeld)
		}
		c.Progress.DeliveryHeld, c.NextTry = false, time.Time{}
		return nil
	}); err != nil {
		return fmt.Errorf("redeliver: %w", err)
	}
	s.log.Info("redelivery requested", "calc", id)
	kick(s.finishKick)
	return nil
}

// releaseHolds lifts the hold of every calculation whose delivery waits for an
// admin, at start: the configuration may have been fixed, and one try per
// start cannot lock the account out.
func (s *Scheduler) releaseHolds() {
	calcs, err := s.st.CalcsByState(store.StateDeliveryFailed)
	if err != nil {
		s.log.Error("read calculations", "err", err)
		return
	}
	for _, c := range calcs {
		if !c.Progress.DeliveryHeld {
			continue
		}
		if _, err := s.st.UpdateCalc(c.ID, func(_ *store.Tx, c *store.Calculation) error {
			c.Progress.DeliveryHeld, c.NextTry = false, time.Time{}
			return nil
		}); err != nil {
			s.log.Error("release held delivery", "calc", c.ID, "err", err)
		}
	}
}
