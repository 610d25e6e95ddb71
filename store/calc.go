package store

import (
	"fmt"
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
