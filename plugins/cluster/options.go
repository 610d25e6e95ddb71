package cluster

import (
	"log/slog"
	"time"

	"hpcbot/plugins"
)

// Defaults of the generic Scheduler; see the Option functions.
const (
	DefaultLostGrace   = 10 * time.Minute
	DefaultSubmitWait  = 10 * time.Second
	DefaultFetchWorker = 4
	// maxCommandLen bounds one remote command. Linux refuses a single argv string
	// over 128 KiB (MAX_ARG_STRLEN), and sshd hands the command to the shell as one.
	maxCommandLen = 100 << 10
)

// Option tunes a Scheduler.
type Option func(*Scheduler)

// WithLostGrace sets how long a job may be missing from every source (queue,
// accounting, exit-code file) before Poll calls it finished with an unknown
// outcome (plugins.StateUnknown). Until then it is plugins.StateLost.
func WithLostGrace(d time.Duration) Option { return func(s *Scheduler) { s.lostGrace = d } }

// WithSubmitWait sets how long Submit waits for another submission of the same
// folder that is still in flight before it reports it as in progress or interrupted.
// Whole seconds; below one second it does not wait.
func WithSubmitWait(d time.Duration) Option { return func(s *Scheduler) { s.submitWait = d } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(s *Scheduler) { s.now = now } }

// WithLogger sets the logger; records carry the keys cluster, calc and job.
func WithLogger(l *slog.Logger) Option { return func(s *Scheduler) { s.log = l } }

// WithFetchWorkers sets how many files Fetch copies at once.
func WithFetchWorkers(n int) Option {
	return func(s *Scheduler) {
		if n > 0 {
			s.fetchWorkers = n
		}
	}
}

// ConfigurableDialect is implemented by a dialect whose commands depend on the
// cluster's settings (for example the local dialect's max_jobs). The Scheduler
// calls Configure from its own Configure, before any other method.
type ConfigurableDialect interface {
	Dialect
	Configure(c plugins.Cluster) error
}

// JobFinder is implemented by a dialect that can look a job up by the name hpcbot
// gave it (REFERENCE §6.2: the job name is the idempotency key). Submit uses it
// when it finds a submission that started but never recorded its outcome (the
// login node rebooted during sbatch): a job found this way is adopted instead of
// starting a second one.
type JobFinder interface {
	// FindCommand returns a command listing the ids of jobs started for req in
	// remoteDir, or "" when the dialect cannot tell for this request (wrapper launch).
	FindCommand(req plugins.SubmitRequest, remoteDir string) string
	// ParseFind returns the ids found, oldest first, without duplicates.
	ParseFind(r RunResult) ([]string, error)
}

// SubmitRetrier is implemented by a dialect that recognises launcher failures
// which certainly started nothing (sbatch could not even connect to slurmctld).
// Submit then clears the folder's submission record and returns a transient
// error, so that a later call launches again. Any doubt must answer false: a
// failure that may have started a job stays permanent.
type SubmitRetrier interface {
	NothingSubmitted(out []byte, exitCode int) bool
}
