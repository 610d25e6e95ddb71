package store

import (
	"fmt"
	"time"
)

// Event is one line of the append-only audit log: who (Actor, a Telegram id,
// 0 for hpcbot itself) did what (Action, e.g. "user.approve") to whom or what
// (Subject, e.g. "user/7" or "calc/42"), with free-form Detail.
type Event struct {
	ID      uint64    `json:"id"`
	At      time.Time `json:"at"`
	Actor   int64     `json:"actor,omitempty"`
	Action  string    `json:"action"`
	Subject string    `json:"subject,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// Events the store appends by itself, in the transaction of the change:
//
//	user.register  RegisterUser created a user (actor: the Telegram id)
//	calc.create    CreateCalculation (actor: the calculation's Telegram id)
//	calc.error     Transition to StateError (actor 0, detail: the note)
//	calc.retry     Transition from StateError back to StateReceived (actor 0)
//
// Everything else (approvals, blocks, limit changes, cancels) is appended by
// the caller, preferably through the Tx of the change.
const (
	ActionUserRegister = "user.register"
	ActionCalcCreate   = "calc.create"
	ActionCalcError    = "calc.error"
	ActionCalcRetry    = "calc.retry"
)

// AddEvent appends an event and returns it with ID (and At, when zero) set.
func (s *Store) AddEvent(e Event) (Event, error) {
	err := s.update(func(t *Tx) error {
		var err error
		e, err = t.AddEvent(e)
		return err
	})
	return e, err
}

// AddEvent appends an event in this transaction.
func (t *Tx) AddEvent(e Event) (Event, error) {
	if e.Action == "" {
		return e, fmt.Errorf("add event: empty action: %w", ErrInvalid)
	}
	b := t.bucket(bEvents)
	id, err := b.NextSequence()
	if err != nil {
		return e, fmt.Errorf("add event: %w", err)
	}
	e.ID = id
	if e.At.IsZero() {
		e.At = t.now
	}
	if err := putJSON(b, u64(id), e); err != nil {
		return e, fmt.Errorf("add event: %w", err)
	}
	return e, nil
}

// Events returns events at or after since, newest first, at most limit of them
// (limit <= 0: no limit). It walks back from the newest event and stops at the
// first one older than since, so it reads only what it returns.
func (s *Store) Events(since time.Time, limit int) ([]Event, error) {
	var out []Event
	err := s.view(func(t *Tx) error {
		b := t.bucket(bEvents)
		c := b.Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			var e Event
			if _, err := getJSON(b, k, &e); err != nil {
				return err
			}
			if e.At.Before(since) {
				break
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}
