package slurm

import (
	"strings"

	"hpcbot/plugins"
)

// state is one Slurm job state code and what hpcbot makes of it.
type state struct {
	long, short string
	to          plugins.State
}

// states lists every code of squeue(1) "JOB STATE CODES" and job_state_codes.html,
// with the flags squeue and sacct print in place of the base state (short codes as
// in Slurm's job_state_string_compact; newer flags have only a long form). Not final:
// COMPLETING (CG), PREEMPTED is final only because a requeued job shows as
// PENDING/REQUEUED instead; SPECIAL_EXIT and the holds wait for a person.
var states = []state{
	{"PENDING", "PD", plugins.StatePending},
	{"CONFIGURING", "CF", plugins.StatePending}, // resources allocated, nodes booting
	{"REQUEUED", "RQ", plugins.StatePending},
	{"REQUEUE_HOLD", "RH", plugins.StatePending},
	{"REQUEUE_FED", "RF", plugins.StatePending},
	{"RESV_DEL_HOLD", "RD", plugins.StatePending},
	{"SPECIAL_EXIT", "SE", plugins.StatePending}, // requeued and held after a special exit value
	{"POWER_UP_NODE", "", plugins.StatePending},
	{"EXPEDITING", "", plugins.StatePending},
	{"RUNNING", "R", plugins.StateRunning},
	{"COMPLETING", "CG", plugins.StateRunning}, // not final: epilog still running
	{"SUSPENDED", "S", plugins.StateRunning},
	{"STOPPED", "ST", plugins.StateRunning},
	{"RESIZING", "RS", plugins.StateRunning},
	{"SIGNALING", "SI", plugins.StateRunning},
	{"STAGE_OUT", "SO", plugins.StateRunning},
	{"UPDATE_DB", "", plugins.StateRunning},
	{"COMPLETED", "CD", plugins.StateSucceeded},
	{"FAILED", "F", plugins.StateFailed},
	{"NODE_FAIL", "NF", plugins.StateFailed},
	{"OUT_OF_MEMORY", "OOM", plugins.StateFailed},
	{"BOOT_FAIL", "BF", plugins.StateFailed},
	{"PREEMPTED", "PR", plugins.StateFailed},
	{"LAUNCH_FAILED", "", plugins.StateFailed},
	{"RECONFIG_FAIL", "", plugins.StateFailed},
	{"TIMEOUT", "TO", plugins.StateTimedOut},
	{"DEADLINE", "DL", plugins.StateTimedOut},
	{"CANCELLED", "CA", plugins.StateCancelled},
	{"REVOKED", "RV", plugins.StateCancelled}, // federation: a sibling started elsewhere
}

var stateByCode = func() map[string]plugins.State {
	m := make(map[string]plugins.State, 2*len(states))
	for _, s := range states {
		m[s.long] = s.to
		if s.short != "" {
			m[s.short] = s.to
		}
	}
	return m
}()

// MapState maps a Slurm state as squeue, sacct or scontrol print it ("R",
// "RUNNING", "CANCELLED by 1001", "CANCELLED+") to hpcbot's state. ok is false for a
// code this table does not know; it then reports running (not final), so the job
// keeps being polled and nobody is told a wrong outcome.
func MapState(raw string) (st plugins.State, ok bool) {
	code := strings.TrimSpace(raw)
	if i := strings.IndexAny(code, " +"); i >= 0 {
		code = code[:i]
	}
	st, ok = stateByCode[strings.ToUpper(code)]
	if !ok {
		return plugins.StateRunning, false
	}
	return st, true
}
