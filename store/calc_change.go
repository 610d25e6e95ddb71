// Creating a calculation (quota checked in the same transaction) and changing
// it: state transitions and updates, each with its indexes.

package store

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// CreateCalculation checks the quota and creates the calculation in ONE
// transaction, so concurrent creations cannot exceed the limit.
//
// In order:
//   - c.UpdateID != 0 and a calculation already came from that update, or
//     c.Key != "" and one was already created under that key: it is returned
//     together with ErrDuplicateUpdate (unwrapped, so == works too);
//   - the user (c.UserID) must exist and not be blocked (ErrBlocked);
//   - the user's calculations created after now-window that count for the quota
//     (see CountsForQuota) must be fewer than User.Limit, else ErrQuotaExceeded;
//   - the calculation gets an ID, state received, Created = now and its first
//     history entry; an ActionCalcCreate event is appended.
//
// The count reads only the user's index entries inside the window.
func (s *Store) CreateCalculation(c Calculation, window time.Duration, now time.Time) (Calculation, error) {
	if window <= 0 {
		return c, fmt.Errorf("create calculation: quota window %s: %w", window, ErrInvalid)
	}
	now = now.Round(0)
	var dup Calculation
	err := s.update(func(t *Tx) error {
		if c.UpdateID != 0 {
			if v := t.bucket(bCalcByUpdate).Get(i64(c.UpdateID)); v != nil {
				var err error
				if dup, err = t.calc(getU64(v)); err != nil {
					return err
				}
				return ErrDuplicateUpdate
			}
		}
		if c.Key != "" {
			if v, ok := t.Value(calcKeyIndex(c.Key)); ok {
				id, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return fmt.Errorf("index of key %q: %w", c.Key, err)
				}
				if dup, err = t.calc(id); err != nil {
					return err
				}
				return ErrDuplicateUpdate
			}
		}
		u, err := t.user(c.UserID)
		if err != nil {
			return err
		}
		if u.Blocked {
			return fmt.Errorf("user %d: %w", u.ID, ErrBlocked)
		}
		since := now.Add(-window)
		used, _ := t.countSince(u.ID, since)
		if used >= u.Limit {
			return fmt.Errorf("user %d has %d of %d calculations since %s: %w",
				u.ID, used, u.Limit, since.UTC().Format(time.RFC3339), ErrQuotaExceeded)
		}
		calcs := t.bucket(bCalcs)
		id, err := calcs.NextSequence()
		if err != nil {
			return err
		}
		c.ID = id
		c.State = StateReceived
		c.Created = now
		c.History = []Transition{{State: StateReceived, At: now}}
		if err := t.putCalc(c, nil); err != nil {
			return err
		}
		if c.UpdateID != 0 {
			if err := t.bucket(bCalcByUpdate).Put(i64(c.UpdateID), u64(id)); err != nil {
				return err
			}
		}
		if c.Key != "" {
			if err := t.SetValue(calcKeyIndex(c.Key), strconv.FormatUint(id, 10)); err != nil {
				return err
			}
		}
		_, err = t.AddEvent(Event{At: now, Actor: c.TelegramID, Action: ActionCalcCreate, Subject: c.Subject(),
			Detail: fmt.Sprintf("%s %s on %s", c.InputName, c.Program, c.Cluster)})
		return err
	})
	if errors.Is(err, ErrDuplicateUpdate) {
		return dup, ErrDuplicateUpdate
	}
	if err != nil {
		return Calculation{}, fmt.Errorf("create calculation: %w", err)
	}
	return c, nil
}

// putCalc writes c and brings its indexes from old (nil for a new calculation) to c.
func (t *Tx) putCalc(c Calculation, old *Calculation) error {
	byState := t.bucket(bCalcByState)
	byUser := t.bucket(bCalcByUser)
	if old != nil && old.State != c.State {
		if err := byState.Delete(stateKey(old.State, old.ID)); err != nil {
			return err
		}
	}
	if old == nil || old.State != c.State {
		if err := byState.Put(stateKey(c.State, c.ID), nil); err != nil {
			return err
		}
	}
	if err := byUser.Put(userCalcKey(c.UserID, c.Created, c.ID), quotaFlag(c)); err != nil {
		return err
	}
	if err := t.putActive(c, old); err != nil {
		return err
	}
	if err := t.putEnded(c, old); err != nil {
		return err
	}
	return putJSON(t.bucket(bCalcs), u64(c.ID), c)
}

// Transition moves calculation id to state to, after letting mutate (which may
// be nil) change its other fields and queue events or outbox messages on the
// Tx; all of it commits together or not at all. It refuses what the
// transition table does not allow with ErrBadTransition. to == the current
// state is a bookkeeping update: allowed, no history entry.
//
// A real transition appends {to, now, note} to History. Entering StateError
// sets Error to note when mutate left it empty and appends ActionCalcError;
// leaving it (the admin's retry to StateReceived) clears Error and the retry
// bookkeeping (Attempts, NextTry, WaitingSince, WaitNotified) before mutate
// runs and appends ActionCalcRetry.
//
// mutate must not change ID, UserID, UpdateID, Created, State or History
// (ErrInvalid).
func (s *Store) Transition(id uint64, to State, note string, mutate func(*Tx, *Calculation) error) (Calculation, error) {
	if !to.Valid() {
		return Calculation{}, fmt.Errorf("calc %d: unknown state %q: %w", id, to, ErrBadTransition)
	}
	return s.changeCalc(id, &to, note, mutate)
}

// UpdateCalc changes a calculation's fields without a state change
// (scheduler bookkeeping, job ids, delivery progress), with the same rules for
// mutate as Transition.
func (s *Store) UpdateCalc(id uint64, mutate func(*Tx, *Calculation) error) (Calculation, error) {
	return s.changeCalc(id, nil, "", mutate)
}

func (s *Store) changeCalc(id uint64, to *State, note string, mutate func(*Tx, *Calculation) error) (Calculation, error) {
	var c Calculation
	err := s.update(func(t *Tx) error {
		var err error
		c, err = t.changeCalc(id, to, note, mutate)
		return err
	})
	if err != nil {
		return Calculation{}, err
	}
	return c, nil
}

// changeCalc is Transition (to not nil) or UpdateCalc (to nil) inside t.
func (t *Tx) changeCalc(id uint64, to *State, note string, mutate func(*Tx, *Calculation) error) (Calculation, error) {
	old, err := t.calc(id)
	if err != nil {
		return Calculation{}, err
	}
	target := old.State
	if to != nil {
		target = *to
	}
	moving := target != old.State
	if moving && !CanTransition(old.State, target) {
		return Calculation{}, fmt.Errorf("calc %d: %s -> %s: %w", id, old.State, target, ErrBadTransition)
	}
	c := old
	c.History = slices.Clone(old.History)
	if moving && old.State == StateError && target == StateReceived {
		c.Error, c.Attempts, c.NextTry, c.WaitingSince, c.WaitNotified = "", 0, time.Time{}, time.Time{}, false
	}
	if mutate != nil {
		if err := mutate(t, &c); err != nil {
			return Calculation{}, err
		}
	}
	if c.ID != old.ID || c.UserID != old.UserID || c.UpdateID != old.UpdateID ||
		!c.Created.Equal(old.Created) || c.State != old.State || len(c.History) != len(old.History) {
		return Calculation{}, fmt.Errorf("calc %d: mutate changed ID, UserID, UpdateID, Created, State or History: %w", id, ErrInvalid)
	}
	if moving {
		c.State = target
		c.History = append(c.History, Transition{State: target, At: t.now, Note: note})
		switch {
		case target == StateError:
			if c.Error == "" {
				c.Error = note
			}
			if _, err := t.AddEvent(Event{Action: ActionCalcError, Subject: c.Subject(), Detail: c.Error}); err != nil {
				return Calculation{}, err
			}
		case old.State == StateError:
			if _, err := t.AddEvent(Event{Action: ActionCalcRetry, Subject: c.Subject(), Detail: note}); err != nil {
				return Calculation{}, err
			}
		}
	}
	if err := t.putCalc(c, &old); err != nil {
		return Calculation{}, err
	}
	return c, nil
}
