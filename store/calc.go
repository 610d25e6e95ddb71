package store

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Transition is one entry of a calculation's history: the state it entered, when, and why.
type Transition struct {
	State State     `json:"state"`
	At    time.Time `json:"at"`
	Note  string    `json:"note,omitempty"`
}

// Calculation is one input file run by one runner on one cluster.
type Calculation struct {
	ID         uint64 `json:"id"`
	UserID     uint64 `json:"user_id"`
	TelegramID int64  `json:"telegram_id,omitempty"` // who sent the input
	ChatID     int64  `json:"chat_id,omitempty"`     // where to answer
	MessageID  int    `json:"message_id,omitempty"`  // the message with the input
	UpdateID   int64  `json:"update_id,omitempty"`   // the Telegram update; 0 = none
	// Key is the creation's idempotency key when no update brought it (Run
	// again: "again/42/..."); "" = none. CreateCalculation makes at most one
	// calculation per key, as per UpdateID.
	Key string `json:"key,omitempty"`
	// RunAgainOf is the calculation this one runs again (same input and
	// caption); 0 = a new input.
	RunAgainOf uint64 `json:"run_again_of,omitempty"`

	InputName string `json:"input_name"` // the input file name, e.g. "h2o.inp"
	// Caption is the caption the input came with, as routed (trimmed; "" when
	// none); nil in records written before captions were kept.
	Caption  *string `json:"caption,omitempty"`
	Folder   string  `json:"folder,omitempty"`    // e.g. "1732640000_7_h2o", local and remote
	LocalDir string  `json:"local_dir,omitempty"` // download_path/Folder

	Runner           string            `json:"runner,omitempty"`
	Program          string            `json:"program,omitempty"`
	Argv             []string          `json:"argv,omitempty"`
	Launch           string            `json:"launch,omitempty"`
	Resources        map[string]string `json:"resources,omitempty"`
	ResultExtensions []string          `json:"result_extensions,omitempty"`
	ResultFiles      []string          `json:"result_files,omitempty"`
	Cluster          string            `json:"cluster,omitempty"`

	State     State     `json:"state"`
	JobID     string    `json:"job_id,omitempty"`
	RawState  string    `json:"raw_state,omitempty"` // the scheduler's own word for the state
	ExitCode  *int      `json:"exit_code,omitempty"` // nil: unknown
	Usage     *Usage    `json:"usage,omitempty"`     // what the job used, recorded when it ended
	Error     string    `json:"error,omitempty"`
	ShareLink string    `json:"share_link,omitempty"`
	Created   time.Time `json:"created"`

	History []Transition `json:"history,omitempty"`

	// Scheduler bookkeeping.
	Attempts     int       `json:"attempts,omitempty"`      // failed tries of the current step
	NextTry      time.Time `json:"next_try,omitzero"`       // do not retry before
	WaitingSince time.Time `json:"waiting_since,omitzero"`  // first failure of the current step
	WaitNotified bool      `json:"wait_notified,omitempty"` // the user was told it waits
	Progress     Progress  `json:"progress,omitzero"`       // what the steps got done (see Progress)

	// Digest is the runner's summary of the results, taken after fetch; nil:
	// none (a runner without Digest, no summary, or Digest failed). Older
	// records have none: no schema step is needed.
	Digest *Digest `json:"digest,omitempty"`
}

// Usage is what an ended job used, recorded once when it ended: its wall time
// and the cores it held. Source says where the figures come from.
type Usage struct {
	WallSeconds int64  `json:"wall_seconds"`
	Cores       int    `json:"cores"`
	Source      string `json:"source"` // UsageAccounting or UsageEstimate
}

// Sources of Usage.
const (
	// UsageAccounting: the scheduler's accounting (Slurm: sacct ElapsedRaw × AllocCPUS).
	UsageAccounting = "accounting"
	// UsageEstimate: the job's measured run time × the cores it asked for.
	UsageEstimate = "estimate"
)

// CoreHours is WallSeconds × Cores in hours.
func (u Usage) CoreHours() float64 { return float64(u.WallSeconds) * float64(u.Cores) / 3600 }

// Digest is a runner's summary of a calculation's results (plugins.Digest,
// kept here so that the store knows nothing of plugins). Text fields are as the
// program printed them.
type Digest struct {
	Program         string `json:"program,omitempty"`
	Version         string `json:"version,omitempty"`
	Termination     string `json:"termination"` // "normal", "failed", "unfinished", "none"
	TerminationLine string `json:"termination_line,omitempty"`
	Energy          string `json:"energy,omitempty"` // Eh, as printed
	EnergyMethod    string `json:"energy_method,omitempty"`
	Optimization    bool   `json:"optimization,omitempty"`
	OptConverged    bool   `json:"opt_converged,omitempty"`
	OptCycles       int    `json:"opt_cycles,omitempty"`
	Frequencies     int    `json:"frequencies,omitempty"`
	Imaginary       int    `json:"imaginary,omitempty"`
	LowestFrequency string `json:"lowest_frequency,omitempty"` // cm⁻¹, as printed
	WallSeconds     int64  `json:"wall_seconds,omitempty"`
	GeometryFile    string `json:"geometry_file,omitempty"`
}

// Digest terminations.
const (
	DigestNormal     = "normal"
	DigestFailed     = "failed"
	DigestUnfinished = "unfinished"
	DigestNone       = "none" // the runner found nothing to summarize: "no summary"
)

// Subject is how events and outbox keys name the calculation: "calc/42".
func (c Calculation) Subject() string { return fmt.Sprintf("calc/%d", c.ID) }

// Submitted reports whether the calculation ever reached StateSubmitted.
func (c Calculation) Submitted() bool {
	for _, h := range c.History {
		if h.State == StateSubmitted {
			return true
		}
	}
	return false
}

// Outcome is how the calculation's job ended and when: its last ended state
// (succeeded, failed, cancelled, timed_out), except that a success whose
// program's own output says it failed (Digest) is failed. ok is false while the
// job has not ended. Every message and listing of an outcome uses this.
func (c Calculation) Outcome() (state State, at time.Time, ok bool) {
	for i := len(c.History) - 1; i >= 0; i-- {
		if h := c.History[i]; h.State.Ended() {
			state, at, ok = h.State, h.At, true
			break
		}
	}
	if state == StateSucceeded && c.Digest != nil && c.Digest.Termination == DigestFailed {
		state = StateFailed
	}
	return state, at, ok
}

// CountsForQuota is the quota rule: every calculation counts, except one that
// ended in error or was cancelled before it was ever submitted (it used no
// cluster time; the user is not charged for our failure or their quick
// change of mind). An admin's retry (error → received) makes it count again.
func (c Calculation) CountsForQuota() bool {
	if (c.State == StateError || c.State == StateCancelled) && !c.Submitted() {
		return false
	}
	return true
}

// Index keys.

func stateKey(s State, id uint64) []byte { return cat([]byte(s), []byte{0}, u64(id)) }

func statePrefix(s State) []byte { return cat([]byte(s), []byte{0}) }

func userCalcKey(userID uint64, created time.Time, id uint64) []byte {
	return cat(u64(userID), timeKey(created), u64(id))
}

// timeKey encodes t so that byte order equals time order (clamped to the
// range UnixNano can represent).
func timeKey(t time.Time) []byte {
	switch {
	case t.Before(minNanoTime):
		return i64(math.MinInt64)
	case t.After(maxNanoTime):
		return i64(math.MaxInt64)
	}
	return i64(t.UnixNano())
}

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

func quotaFlag(c Calculation) []byte {
	if c.CountsForQuota() {
		return []byte{1}
	}
	return []byte{0}
}

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

// calcKeyIndex is the kv key that indexes the calculation created under an
// idempotency key (Calculation.Key).
func calcKeyIndex(key string) string { return "calc/key/" + key }

// CalcCreatedBy returns the calculation created from Telegram update updateID
// (when not 0) or under idempotency key key (when not ""), or ErrNotFound.
func (s *Store) CalcCreatedBy(updateID int64, key string) (Calculation, error) {
	var c Calculation
	err := s.view(func(t *Tx) error {
		if updateID != 0 {
			if v := t.bucket(bCalcByUpdate).Get(i64(updateID)); v != nil {
				var err error
				c, err = t.calc(getU64(v))
				return err
			}
		}
		if key != "" {
			if v, ok := t.Value(calcKeyIndex(key)); ok {
				id, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return fmt.Errorf("index of key %q: %w", key, err)
				}
				c, err = t.calc(id)
				return err
			}
		}
		return fmt.Errorf("calculation of update %d, key %q: %w", updateID, key, ErrNotFound)
	})
	return c, err
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

func (t *Tx) calc(id uint64) (Calculation, error) {
	var c Calculation
	ok, err := getJSON(t.bucket(bCalcs), u64(id), &c)
	if err != nil {
		return c, fmt.Errorf("calc %d: %w", id, err)
	}
	if !ok {
		return c, fmt.Errorf("calc %d: %w", id, ErrNotFound)
	}
	return c, nil
}

// Calc returns the calculation with this id.
func (s *Store) Calc(id uint64) (Calculation, error) {
	var c Calculation
	err := s.view(func(t *Tx) error {
		var err error
		c, err = t.calc(id)
		return err
	})
	return c, err
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

// CalcsByState returns the calculations in any of the given states, ordered by
// id. It reads the state index, not every calculation.
func (s *Store) CalcsByState(states ...State) ([]Calculation, error) {
	var out []Calculation
	err := s.view(func(t *Tx) error {
		c := t.bucket(bCalcByState).Cursor()
		for _, st := range states {
			prefix := statePrefix(st)
			for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
				calc, err := t.calc(getU64(k[len(prefix):]))
				if err != nil {
					return err
				}
				out = append(out, calc)
			}
		}
		return nil
	})
	if len(states) > 1 {
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	}
	return out, err
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

// CalcsOfUser returns the user's calculations created after since, newest
// first, at most limit of them (limit <= 0: all). It reads the user index
// backwards and stops at since.
func (s *Store) CalcsOfUser(userID uint64, since time.Time, limit int) ([]Calculation, error) {
	var out []Calculation
	err := s.view(func(t *Tx) error {
		prefix := u64(userID)
		floor := cat(prefix, timeKey(since))
		c := t.bucket(bCalcByUser).Cursor()
		k, _ := c.Seek(u64(userID + 1))
		if k == nil || userID == math.MaxUint64 {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && hasPrefix(k, prefix); k, _ = c.Prev() {
			if string(k[:16]) <= string(floor) {
				break
			}
			calc, err := t.calc(getU64(k[16:]))
			if err != nil {
				return err
			}
			out = append(out, calc)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// CountCalcsSince counts the user's calculations created after since that
// count for the quota (CountsForQuota): what /status shows as used.
func (s *Store) CountCalcsSince(userID uint64, since time.Time) (int, error) {
	var n int
	err := s.view(func(t *Tx) error {
		n, _ = t.countSince(userID, since)
		return nil
	})
	return n, err
}

// countSince counts the user's calculations created after since: those that
// count for the quota, and all of them.
func (t *Tx) countSince(userID uint64, since time.Time) (counted, all int) {
	prefix := u64(userID)
	floor := cat(prefix, timeKey(since))
	c := t.bucket(bCalcByUser).Cursor()
	k, v := c.Seek(floor)
	for ; k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		if string(k[:16]) <= string(floor) {
			continue // created exactly at since: not after it
		}
		all++
		if len(v) == 1 && v[0] == 1 {
			counted++
		}
	}
	return counted, all
}
