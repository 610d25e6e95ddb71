package store

// State is where a calculation is in its lifecycle.
type State string

// The states, in lifecycle order.
const (
	StateReceived  State = "received"  // accepted from Telegram, input being downloaded
	StateStaged    State = "staged"    // input uploaded to the cluster
	StateSubmitted State = "submitted" // the scheduler took it and gave a job id
	StatePending   State = "pending"   // queued on the cluster
	StateRunning   State = "running"   // running on the cluster
	StateSucceeded State = "succeeded" // ended with exit code 0
	StateFailed    State = "failed"    // ended with a non-zero exit code, or the scheduler says failed
	StateCancelled State = "cancelled" // cancelled by a user or admin (or on the cluster)
	StateTimedOut  State = "timed_out" // killed at its time limit
	StateRetrieved State = "retrieved" // result files fetched into LocalDir
	// StateDeliveryFailed: the results are fetched and held in LocalDir, but
	// putting them where the user gets them failed; retried with backoff, or
	// held for an admin (Progress.DeliveryHeld).
	StateDeliveryFailed State = "delivery_failed"
	StateDelivered      State = "delivered" // results uploaded (share link) or sent as files
	StateNotified       State = "notified"  // the user was told; the end of the road
	StateError          State = "error"     // given up; Error says why a person can act on
)

// States lists every state in lifecycle order.
var States = []State{
	StateReceived, StateStaged, StateSubmitted, StatePending, StateRunning,
	StateSucceeded, StateFailed, StateCancelled, StateTimedOut,
	StateRetrieved, StateDeliveryFailed, StateDelivered, StateNotified, StateError,
}

// transitions is THE transition table: from → allowed targets. Transition
// refuses every change not listed here. A "transition" to the same state is
// always allowed and is a bookkeeping update (no history entry).
var transitions = map[State][]State{
	StateReceived:       {StateStaged, StateCancelled, StateError},
	StateStaged:         {StateSubmitted, StateCancelled, StateError},
	StateSubmitted:      {StatePending, StateRunning, StateSucceeded, StateFailed, StateCancelled, StateTimedOut, StateError},
	StatePending:        {StateRunning, StateSucceeded, StateFailed, StateCancelled, StateTimedOut, StateError},
	StateRunning:        {StateSucceeded, StateFailed, StateCancelled, StateTimedOut, StateError},
	StateSucceeded:      {StateRetrieved, StateError},
	StateFailed:         {StateRetrieved, StateError},
	StateCancelled:      {StateRetrieved, StateError},
	StateTimedOut:       {StateRetrieved, StateError},
	StateRetrieved:      {StateDelivered, StateDeliveryFailed, StateError},
	StateDeliveryFailed: {StateDelivered, StateError},
	StateDelivered:      {StateNotified, StateError},
	StateNotified:       nil,
	StateError:          {StateReceived}, // an admin's retry
}

// Transitions returns a copy of the transition table (for docs and tests).
func Transitions() map[State][]State {
	out := make(map[State][]State, len(transitions))
	for from, tos := range transitions {
		out[from] = append([]State(nil), tos...)
	}
	return out
}

// CanTransition reports whether the table allows from → to. Same-state
// updates are not transitions; Transition accepts them separately.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Active reports whether the cluster has the job (submitted, pending, running):
// the states a scheduler polls.
func (s State) Active() bool {
	return s == StateSubmitted || s == StatePending || s == StateRunning
}

// Ended reports whether the job ended on the cluster (succeeded, failed,
// cancelled, timed_out) and its results wait to be fetched.
func (s State) Ended() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled || s == StateTimedOut
}

// Final reports whether nothing more happens to the calculation by itself
// (notified, error).
func (s State) Final() bool { return s == StateNotified || s == StateError }
