package kit

import (
	"context"
	"time"
)

// State is a job's state as the core understands it. Plugins map every native
// scheduler code to one of these and keep the native code in JobStatus.Raw.
type State string

const (
	StatePending   State = "pending"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
	StateTimedOut  State = "timed_out"
	// StateUnknown: the job has finished but its outcome cannot be learnt (it left the
	// queue, there is no accounting and no exit-code file). Never reported before the
	// plugin's grace period has passed; the core treats it as finished, exit unknown.
	StateUnknown State = "finished_unknown"
	// StateLost: the plugin has no record of the job at all and it is not
	// (or not yet) safe to call it finished. The core keeps polling.
	StateLost State = "lost"
)

// Final reports whether s is a state a job never leaves.
func (s State) Final() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCancelled, StateTimedOut, StateUnknown:
		return true
	}
	return false
}

// CheckResult is what Check learnt about the cluster.
type CheckResult struct {
	Scheduler string // e.g. "slurm 22.05.8"
	Host      string // e.g. "login1.example.org"
	Detail    string
}

// StageRequest asks to copy a local calculation folder to the cluster.
type StageRequest struct {
	CalcID   uint64
	LocalDir string // absolute path on the bot's host
	Folder   string // folder name under the cluster's upload_path, e.g. "1732640000_7_h2o"
}

// SubmitRequest asks to start a calculation whose folder has been staged.
type SubmitRequest struct {
	CalcID    uint64
	Folder    string   // as in StageRequest
	Argv      []string // program and arguments, validated by a runner; never passed through a shell unquoted
	Launch    string   // LaunchBatch or LaunchWrapper
	Resources map[string]string
	JobName   string // e.g. "hpcbot-42"; batch launch uses it as the scheduler's job name
	Comment   string // e.g. "hpcbot user=7 org=ipc"; recorded in the job where the scheduler allows
}

// SubmitResult is what Submit started (or found already started).
type SubmitResult struct {
	JobID  string
	Output string // the launcher's output, for the log
	// Existing is true when the job had been submitted by an earlier call.
	Existing bool
}

// JobRef names one job for Poll and Cancel.
type JobRef struct {
	CalcID uint64
	JobID  string
	Folder string
	Launch string
}

// JobStatus is one job's state as Poll saw it.
type JobStatus struct {
	JobID    string
	State    State
	Raw      string // the scheduler's own code, e.g. "PD", "CD", "OUT_OF_MEMORY"
	ExitCode *int   // nil when unknown
	Reason   string // the scheduler's reason or a human note
	Started  time.Time
	Ended    time.Time
	// The scheduler's own accounting of an ended job, where it keeps one
	// (Slurm: sacct ElapsedRaw and AllocCPUS): wall time and CPUs allocated; 0
	// when unknown. hpcbot stores them once, when the job ends.
	Elapsed   time.Duration
	AllocCPUs int
	// Node is where the job runs or ran as the scheduler names it (Slurm's
	// NodeList such as "node[01-04]", PBS's exec_host); "" when unknown or
	// the scheduler has no nodes (ssh, local).
	Node string
}

// FetchRequest asks to copy result files from the cluster.
type FetchRequest struct {
	Folder   string
	LocalDir string
	// Extensions (".out") and Files ("result.xyz") allowed; a file matching neither is skipped.
	// Both empty means every file.
	Extensions []string
	Files      []string
	MaxSize    int64 // a file above this many bytes is skipped; 0: no cap
	MaxTotal   int64 // stop fetching past this many bytes in total; 0: no cap
}

// Skipped is a file Fetch did not copy and why.
type Skipped struct {
	Path string
	Size int64
	// Code says why, one of the Skip* codes; hpcbot tells the user in the
	// user's language. A plugin that sets none is shown as SkipOther.
	Code string
	// Reason is an English detail for hpcbot's log ("listed at 12 MB, limit
	// 10 MB"); the user never sees it.
	Reason string
}

// Why Fetch skipped a file (Skipped.Code).
const (
	SkipTooLarge       = "too_large"       // above FetchRequest.MaxSize
	SkipGrew           = "grew"            // grew past the limits while being fetched
	SkipLimitReached   = "limit_reached"   // would take the total past FetchRequest.MaxTotal
	SkipLink           = "link"            // a symbolic link (never followed)
	SkipSpecialFile    = "special_file"    // a fifo, socket, device or other non-regular file
	SkipTemporary      = "temporary"       // *.tmp
	SkipNotWhitelisted = "not_whitelisted" // matches neither Extensions nor Files
	SkipNotFound       = "not_found"       // vanished between the listing and the copy
	SkipUnreadable     = "unreadable"      // the cluster refused to let it be read
	// SkipOther is what hpcbot records for a code it does not know (or none,
	// from an older plugin): the plugin's Reason goes to the log only.
	SkipOther = "other"
)

// SkipCodes are the codes a plugin may send, SkipOther aside.
var SkipCodes = []string{SkipTooLarge, SkipGrew, SkipLimitReached, SkipLink, SkipSpecialFile,
	SkipTemporary, SkipNotWhitelisted, SkipNotFound, SkipUnreadable}

// FetchResult lists what Fetch copied (paths relative to LocalDir) and skipped.
type FetchResult struct {
	Files   []string
	Bytes   int64
	Skipped []Skipped
}

// Scheduler is the contract every scheduler plugin implements. One instance serves
// one cluster, configured once with Configure before any other call.
//
// Errors: a returned error carries a Kind (see Error). Transient errors mean "try
// again later" and must leave nothing half-done that a repeat could not finish;
// KindAuth means the cluster refused our credentials or host key; KindNotFound means the
// job or folder does not exist.
//
// Idempotence: every method is safe to call again with the same arguments after a
// crash or a lost reply. In particular Submit never starts a second job for the
// same CalcID and Folder: a repeat returns the first job with Existing set.
type Scheduler interface {
	// Configure hands the plugin its cluster. It does not connect.
	Configure(ctx context.Context, c Cluster) error
	// Check connects and reports the scheduler's version.
	Check(ctx context.Context) (CheckResult, error)
	// Stage copies LocalDir to <upload_path>/<Folder>, creating parents; files already
	// there with the same size are overwritten, so a repeat is harmless.
	Stage(ctx context.Context, req StageRequest) error
	// Submit starts the calculation (see Idempotence).
	Submit(ctx context.Context, req SubmitRequest) (SubmitResult, error)
	// Poll reports the state of many jobs with one scheduler query (plus at most one
	// accounting query for jobs that left the queue). The result has one entry per ref,
	// in the same order.
	Poll(ctx context.Context, jobs []JobRef) ([]JobStatus, error)
	// Cancel stops a queued or running job. Cancelling a finished job is not an error.
	Cancel(ctx context.Context, job JobRef) error
	// Fetch copies whitelisted result files of <upload_path>/<Folder> into LocalDir,
	// recursively, skipping *.tmp and files over the caps.
	Fetch(ctx context.Context, req FetchRequest) (FetchResult, error)
	// Cleanup removes <upload_path>/<Folder>. A missing folder is not an error.
	Cleanup(ctx context.Context, folder string) error
}

// TransportStats is a scheduler plugin's traffic to its cluster since its
// process started: what a centre counts to see that the bot keeps one
// connection and few commands (/clusters, the metrics endpoint).
type TransportStats struct {
	Handshakes   int64 // SSH handshakes started (TCP connect and key exchange), whatever their outcome
	Commands     int64 // remote commands run
	AuthFailures int64 // logins the cluster refused
}

// StatsReporter is implemented by a Scheduler that counts its traffic. A plugin
// that does not is told apart by the error (KindPermanent).
type StatsReporter interface {
	TransportStats(ctx context.Context) (TransportStats, error)
}
