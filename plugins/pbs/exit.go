package pbs

import (
	"fmt"
	"strconv"
	"strings"

	"hpcbot/plugins"
)

// Exit statuses below zero are PBS's own: the job could not run or was killed
// by PBS. PBS Pro/OpenPBS values from src/include/job.h (JOB_EXEC_*).
var proExecNames = map[int]string{
	-1:  "JOB_EXEC_FAIL1: could not start, before files",
	-2:  "JOB_EXEC_FAIL2: could not start, after files",
	-3:  "JOB_EXEC_RETRY: could not start, retried",
	-4:  "JOB_EXEC_INITABT: aborted on MoM initialization",
	-5:  "JOB_EXEC_INITRST: aborted on MoM initialization (checkpointed)",
	-6:  "JOB_EXEC_INITRMG: aborted on MoM initialization (checkpointed, migratable)",
	-7:  "JOB_EXEC_BADRESRT: restart failed",
	-10: "JOB_EXEC_FAILUID: invalid user or group",
	-11: "JOB_EXEC_RERUN: rerun",
	-12: "JOB_EXEC_CHKP: checkpointed and killed",
	-13: "JOB_EXEC_FAIL_PASSWORD: bad password",
	-14: "JOB_EXEC_RERUN_SIS_FAIL: rerun after a sister failed",
	-15: "JOB_EXEC_QUERST: requeued for restart",
	-16: "JOB_EXEC_FAILHOOK_RERUN: rejected by a hook, requeued",
	-17: "JOB_EXEC_FAILHOOK_DELETE: rejected by a hook, deleted",
	-18: "JOB_EXEC_HOOK_RERUN: requeued by a hook",
	-19: "JOB_EXEC_HOOK_DELETE: deleted by a hook",
	-20: "JOB_EXEC_RERUN_MS_FAIL: mother superior connection failed",
	-21: "JOB_EXEC_FAIL_SECURITY: security breach in PBS directory",
	-22: "JOB_EXEC_HOOKERROR: hook error or timeout",
	-23: "JOB_EXEC_FAIL_KRB5: no Kerberos credentials",
	-24: "JOB_EXEC_KILL_NCPUS_BURST: killed for exceeding ncpus (burst)",
	-25: "JOB_EXEC_KILL_NCPUS_SUM: killed for exceeding ncpus (sum)",
	-26: "JOB_EXEC_KILL_VMEM: killed for exceeding vmem",
	-27: "JOB_EXEC_KILL_MEM: killed for exceeding mem",
	-28: "JOB_EXEC_KILL_CPUT: killed for exceeding cput",
	-29: "JOB_EXEC_KILL_WALLTIME: killed for exceeding walltime",
	-30: "JOB_EXEC_JOINJOB: join job error",
}

// Torque's values from its src/include/pbs_job.h.
var torqueExecNames = map[int]string{
	-1:  "JOB_EXEC_FAIL1: could not start, before files",
	-2:  "JOB_EXEC_FAIL2: could not start, after files",
	-3:  "JOB_EXEC_RETRY: could not start, retried",
	-4:  "JOB_EXEC_INITABT: aborted on MOM initialization",
	-5:  "JOB_EXEC_INITRST: aborted on MOM initialization (checkpointed)",
	-6:  "JOB_EXEC_INITRMG: aborted on MOM initialization (checkpointed, migratable)",
	-7:  "JOB_EXEC_BADRESRT: restart failed",
	-8:  "JOB_EXEC_CMDFAIL: exec() of the user command failed",
	-9:  "JOB_EXEC_STDOUTFAIL: could not create the stdout/stderr files",
	-10: "JOB_EXEC_OVERLIMIT: exceeded a resource limit",
}

const (
	proSubstateDeleted  = "91" // JOB_SUBSTATE_TERMINATED: deleted with qdel
	proExitKillWalltime = -29  // JOB_EXEC_KILL_WALLTIME
	torqueExitOverlimit = -10  // JOB_EXEC_OVERLIMIT
	signalBase          = 256  // a job killed by signal N ends with 256+N
	sigKill, sigTerm    = 9, 15
)

// finished maps a finished job (PBS Pro F or X, Torque C) to its final state.
// ok is false when the record says nothing about the outcome (no exit status
// and not deleted): the caller then leaves the job out, so the generic code
// reads the exit-code file.
//
// PBS Pro: substate 91 means deleted (qdel) → cancelled; Exit_status 0 →
// succeeded; -29 → timed_out; another negative value → failed with its
// JOB_EXEC_* name; 256+15 (SIGTERM, what qdel sends) → cancelled; 256+N →
// failed, killed by signal N; 1..255 → failed with that exit code.
//
// Torque: exit_status 0 → succeeded; -10 (resource limit) or 256+N with
// resources_used.walltime at or past Resource_List.walltime → timed_out; other
// -10 → failed; 256+15 → cancelled; 256+N → failed; other negatives and
// 1..255 → failed.
func (d *Dialect) finished(r record) (st plugins.JobStatus, ok bool) {
	if d.flavor == FlavorPro && r.Substate == proSubstateDeleted {
		st.State = plugins.StateCancelled
		st.Reason = "deleted (qdel)"
		if code, err := strconv.Atoi(r.Exit); err == nil {
			st.Reason += fmt.Sprintf(", exit status %d", code)
			if code >= 0 && code < signalBase {
				st.ExitCode = &code
			}
		}
		return st, true
	}
	code, err := strconv.Atoi(strings.TrimSpace(r.Exit))
	if err != nil {
		return st, false
	}
	names := proExecNames
	if d.flavor == FlavorTorque {
		names = torqueExecNames
	}
	timedOut := d.flavor == FlavorTorque && (code == torqueExitOverlimit || code > signalBase) &&
		walltimeReached(r.UsedWall, r.ReqWall)
	switch {
	case code == 0:
		st.State = plugins.StateSucceeded
		st.ExitCode = &code
		st.Reason = "exit status 0"
	case timedOut:
		st.State = plugins.StateTimedOut
		st.Reason = fmt.Sprintf("walltime %s reached (used %s), exit status %d", r.ReqWall, r.UsedWall, code)
	case d.flavor == FlavorPro && code == proExitKillWalltime:
		st.State = plugins.StateTimedOut
		st.Reason = fmt.Sprintf("exit status %d, %s", code, names[code])
	case code < 0:
		st.State = plugins.StateFailed
		if n, found := names[code]; found {
			st.Reason = fmt.Sprintf("exit status %d, %s", code, n)
		} else {
			st.Reason = fmt.Sprintf("exit status %d (PBS could not run the job)", code)
		}
	case code == signalBase+sigTerm:
		st.State = plugins.StateCancelled
		st.Reason = fmt.Sprintf("exit status %d: killed by SIGTERM, as qdel does", code)
	case code > signalBase:
		st.State = plugins.StateFailed
		st.Reason = fmt.Sprintf("exit status %d: killed by signal %d", code, code-signalBase)
	default:
		st.State = plugins.StateFailed
		st.ExitCode = &code
		st.Reason = fmt.Sprintf("exit status %d", code)
	}
	return st, true
}

// walltimeReached reports whether used ([[h:]m:]s) is at or past requested.
// Unknown values give false.
func walltimeReached(used, requested string) bool {
	u, ok1 := parseDuration(used)
	q, ok2 := parseDuration(requested)
	return ok1 && ok2 && q > 0 && u >= q
}

// parseDuration reads PBS's [[hours:]minutes:]seconds into seconds.
func parseDuration(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	var total int64
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return 0, false
	}
	for _, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return 0, false
		}
		total = total*60 + n
	}
	return total, true
}
