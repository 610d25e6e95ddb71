package scheduler

import (
	"context"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// Event names what a Notification tells the user.
type Event string

const (
	EventAccepted Event = "accepted" // staged and submitted: job id and cluster known
	EventWaiting  Event = "waiting"  // a step keeps failing for an infrastructure reason; told once
	EventResumed  Event = "resumed"  // it went on after a wait
	EventFinished Event = "finished" // results delivered (link or files), or told where they are
	// EventDeliveryFailed: the job ended and its results are held, but the cloud
	// did not take them; Code cloud_unavailable (retrying) or cloud_refused
	// (held until an admin fixes the configuration). Outcome: how the job ended.
	EventDeliveryFailed Event = "delivery_failed"
	EventError          Event = "error"     // given up; Code and Reason say why
	EventCancelled      Event = "cancelled" // cancelled before it ran (no results)
)

// Codes say, in a form the bot can translate, why a calculation waits or failed.
const (
	CodeClusterUnreachable = "cluster_unreachable" // SSH down, maintenance; retrying
	CodeClusterDrained     = "cluster_drained"     // an admin drained the cluster; submitted when undrained
	CodeAuthFailed         = "auth_failed"         // the cluster refused the bot's login or host key
	CodeSubmitRejected     = "submit_rejected"     // the scheduler refused the job (script, resources)
	CodeGaveUp             = "gave_up"             // unreachable for longer than give_up_after
	CodeCloudUnavailable   = "cloud_unavailable"   // Nextcloud unreachable or failing (5xx, 507 full, ...); retrying
	CodeCloudRefused       = "cloud_refused"       // Nextcloud refused the bot's credentials (401/403); held for an admin
	CodeTooLarge           = "too_large"           // results above the Telegram upload limit, left on the cluster
	CodeFetchFailed        = "fetch_failed"        // results could not be brought back (disk full, ...)
	CodeInputMissing       = "input_missing"       // the input file vanished from download_path
	CodeOutcomeUnknown     = "outcome_unknown"     // the job ended but its exit status is unknown
	CodeInputRefused       = "input_refused"       // the runner's Check refused the input; Notification.Refusal says why
)

// Notification is one message for the user who owns the calculation (and the log chat).
type Notification struct {
	// Key is unique per calculation and event: "calc/42/accepted",
	// "calc/42/finished", "calc/42/cancelled", "calc/42/error"; a wait and its end
	// carry the wait's start, "calc/42/waiting/1732640000", "calc/42/resumed/1732640000";
	// after an admin's retry the keys of the new round end in "/r2". The Notifier
	// must act on a key at most once: the scheduler calls Notify again for the
	// same key after a crash.
	Key   string
	Event Event
	Calc  store.Calculation
	// Code and Reason: why it waits or failed. Reason is English detail for the log
	// (an error text); the user-facing text comes from Code.
	Code   string
	Reason string
	// Refusal: error with CodeInputRefused: the runner's refusal, for the
	// user's message in their language (the line and the fix).
	Refusal *plugins.Refusal
	Since   time.Time // waiting: since when
	// Outcome: finished and delivery_failed: how the job ended (succeeded, failed, cancelled,
	// timed_out); Calc.State is already "delivered" by then. A job whose end the
	// cluster could not tell is failed with Code outcome_unknown, never succeeded.
	Outcome store.State
	Link    string // finished: the share link, if any
	// Files: finished without cloud storage: local files (absolute paths) to send
	// as documents. The scheduler has already packed several result files into
	// one zip and checked the Bot API's 50 MB limit: the bot sends each file as
	// it is. Above the limit Files is empty, Code is too_large and Where says
	// where the results are.
	Files []string
	// Where: finished without link or files (too large): the remote folder.
	Where string
	// Skipped: result files not fetched, and why (a code, or an older
	// record's English text).
	Skipped []store.SkippedFile
	// Tail: the last lines of the program's error output, for failed and error.
	Tail string
}

// Notifier is implemented by the bot. Notify queues the message durably (it must
// not wait for Telegram) and is idempotent by Key; an error means "not queued",
// and the scheduler retries.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// ClusterInfo describes a cluster and its programs for /help.
type ClusterInfo struct {
	Label     string
	Scheduler string
	Programs  []plugins.ProgramInfo
	// Usable is false when the cluster refused the bot's login: admins must act.
	Usable bool
	Reason string
	// Drain is the cluster's maintenance state (/drain, drained = true).
	Drain DrainState
}

// Route is where an input file goes: which cluster, which runner, and the runner's plan.
type Route struct {
	Cluster string
	Runner  string
	Plan    plugins.Plan
	// Drained: the cluster is drained and no other takes the file; the
	// calculation waits in the store until an admin undrains it.
	Drained bool
}
