// A JobStatus from Slurm's fields (state, reason, times, exit code, nodes),
// shared by the poll (squeue) and finished jobs (sacct, scontrol).

package slurm

import (
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
)

// nodeList is a job's node list as Slurm prints it ("node[01-04]"), or ""
// for the ways it says "none yet".
func nodeList(s string) string {
	s = strings.TrimSpace(s)
	switch s {
	case "", "(null)", "None", "None assigned", "n/a":
		return ""
	}
	return s
}

func wanted(jobs []plugins.JobRef) map[string]bool {
	w := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		w[j.JobID] = true
	}
	return w
}

// status builds a JobStatus from a raw state and reason.
func status(id, raw, reason string) plugins.JobStatus {
	raw = strings.TrimSpace(raw)
	reason = strings.TrimSpace(reason)
	st, ok := MapState(raw)
	if !ok {
		reason = strings.TrimSpace("unknown Slurm state " + raw + "; " + reason)
	}
	if reason == "None" || reason == "(null)" {
		reason = ""
	}
	return plugins.JobStatus{JobID: id, State: st, Raw: raw, Reason: reason}
}

// settle makes COMPLETED and the exit code agree: COMPLETED means every process
// exited 0 (job_exit_code.shtml), so it implies exit code 0, and a non-zero code
// recorded with it (which Slurm does not do) is believed over the state.
func settle(st plugins.JobStatus) plugins.JobStatus {
	if st.State != plugins.StateSucceeded {
		return st
	}
	if st.ExitCode == nil {
		zero := 0
		st.ExitCode = &zero
	} else if *st.ExitCode != 0 {
		st.State = plugins.StateFailed
		st.Reason = strings.TrimSpace(st.Reason + " COMPLETED with a non-zero exit code")
	}
	return st
}

// parseTime reads a SLURM_TIME_FORMAT=standard time; "N/A", "Unknown", "None" give zero.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if len(s) != len("2006-01-02T15:04:05") {
		return time.Time{} // N/A, NONE, Unknown: skip the costly failed parse
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local)
	if err != nil {
		return time.Time{}
	}
	return t
}

// parseExitCode reads "code:signal"; a signal gives 128+signal, as a shell reports it.
func parseExitCode(s string) *int {
	c, sig, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return nil
	}
	code, err1 := strconv.Atoi(c)
	signal, err2 := strconv.Atoi(sig)
	if err1 != nil || err2 != nil || code < 0 || code > 255 || signal < 0 || signal > 127 {
		return nil
	}
	if signal != 0 && code == 0 {
		code = 128 + signal
	}
	return &code
}
