package pbs

import (
	"regexp"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// PollCommand asks about all jobs in one command:
//
//	pro:    qstat -x -f -F json <id>...   (-x: finished jobs too, while the
//	        server keeps them, job_history_duration)
//	torque: qstat -f <id>...              (finished jobs only while keep_completed lasts)
//
// The generic code splits a job list whose command would pass the kernel's
// argument limit.
func (d *Dialect) PollCommand(jobs []plugins.JobRef, remoteDirs []string) string {
	seen := make(map[string]bool, len(jobs))
	var ids strings.Builder
	for _, j := range jobs {
		if j.JobID == "" || seen[j.JobID] {
			continue
		}
		seen[j.JobID] = true
		ids.WriteByte(' ')
		ids.WriteString(shellquote.Quote(j.JobID))
	}
	if ids.Len() == 0 {
		return ""
	}
	if d.flavor == FlavorTorque {
		return "qstat -f" + ids.String()
	}
	return "qstat -x -f -F json" + ids.String()
}

// ignorableStderr matches what qstat says about an id it does not know or no
// longer shows: "qstat: Unknown Job Id 123.server" (both flavors; Torque adds
// "Error"), PBS Pro's "qstat: 123.server Job has finished, use -x or -H ..."
// (only without -x) and its continuation line.
var ignorableStderr = regexp.MustCompile(`(?i)unknown job id|has finished|obtain historical job information`)

// ParsePoll reads PollCommand's output. qstat exits non-zero when any id is
// unknown but still prints the others, so the exit code alone is no error:
// ParsePoll fails (transient) only when qstat printed no job and complained about
// something other than unknown ids, or printed something it cannot read.
// Jobs qstat did not show are absent from the map, and so are finished jobs
// whose record has no exit status (the generic code reads the exit-code file).
func (d *Dialect) ParsePoll(r cluster.RunResult, jobs []plugins.JobRef) (map[string]plugins.JobStatus, error) {
	var (
		recs []record
		err  error
	)
	if d.flavor == FlavorTorque {
		recs = parseText(r.Stdout)
	} else {
		recs, err = parseJSON(r.Stdout)
		if err != nil {
			return nil, plugins.Errorf(plugins.KindTransient, "pbs poll: %w", err)
		}
	}
	if len(recs) == 0 && r.ExitCode != 0 {
		if problem := otherStderr(r.Stderr); problem != "" || len(r.Stderr) == 0 {
			return nil, plugins.Errorf(plugins.KindTransient, "pbs poll: qstat exited %d: %s", r.ExitCode, problem)
		}
	}
	byID, bySeq := indexRecords(recs)
	out := make(map[string]plugins.JobStatus, len(jobs))
	for _, j := range jobs {
		rec, found := lookup(byID, bySeq, j.JobID)
		if !found {
			continue
		}
		st, ok := d.status(rec)
		if !ok {
			continue
		}
		st.JobID = j.JobID
		out[j.JobID] = st
	}
	return out, nil
}

// FinishedCommand is empty: PBS Pro's poll already includes finished jobs
// (qstat -x), and Torque keeps no history a user can query (tracejob needs the
// server's logs, usually unreadable to users). Jobs absent from the poll are
// settled by the exit-code file.
func (d *Dialect) FinishedCommand(jobs []plugins.JobRef) string { return "" }

// ParseFinished is never called with output (FinishedCommand is empty); it
// reports nothing.
func (d *Dialect) ParseFinished(r cluster.RunResult, jobs []plugins.JobRef) (map[string]plugins.JobStatus, error) {
	return map[string]plugins.JobStatus{}, nil
}

// otherStderr returns stderr's first line that is not about an unknown or
// finished job, "" if there is none.
func otherStderr(stderr []byte) string {
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || ignorableStderr.MatchString(line) {
			continue
		}
		return firstLine(line)
	}
	return ""
}

// indexRecords indexes records by id and by sequence number (the part before
// the first dot) for ids printed with another server suffix than qsub's.
func indexRecords(recs []record) (map[string]record, map[string][]record) {
	byID := make(map[string]record, len(recs))
	bySeq := make(map[string][]record, len(recs))
	for _, r := range recs {
		byID[r.ID] = r
		seq := sequence(r.ID)
		bySeq[seq] = append(bySeq[seq], r)
	}
	return byID, bySeq
}

// lookup finds id's record: the same id, or the only record with the same
// sequence number whose server part agrees ("42" and "42.srv" and
// "42.srv.example.org" agree; "42.a" and "42.b" do not).
func lookup(byID map[string]record, bySeq map[string][]record, id string) (record, bool) {
	if r, ok := byID[id]; ok {
		return r, true
	}
	var match []record
	for _, r := range bySeq[sequence(id)] {
		if serversAgree(server(r.ID), server(id)) {
			match = append(match, r)
		}
	}
	if len(match) == 1 {
		return match[0], true
	}
	return record{}, false
}

func sequence(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return id[:i]
	}
	return id
}

func server(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return id[i+1:]
	}
	return ""
}

// serversAgree: one server name is empty, or one is the other's dotted prefix.
func serversAgree(a, b string) bool {
	if a == "" || b == "" || a == b {
		return true
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return strings.HasPrefix(b, a+".")
}

// status maps one record to a JobStatus (JobID not set). ok is false for a
// finished job without an outcome.
//
//	Q queued, W waiting for its start time, T in transit, H held → pending
//	R running, E exiting, B array begun → running
//	S suspended, U suspended (workstation busy) → running, with the reason
//	F finished (PBS Pro), X finished subjob, C completed (Torque) → see finished
//	M moved to another server, or a letter PBS does not document → lost
func (d *Dialect) status(r record) (plugins.JobStatus, bool) {
	st := plugins.JobStatus{Raw: r.State, Started: d.parseTime(r.Start), Node: nodes(r.ExecHost)}
	switch r.State {
	case "Q", "W", "T":
		st.State = plugins.StatePending
		st.Reason = r.Comment
	case "H":
		st.State = plugins.StatePending
		st.Reason = joinReason("held", r.Comment)
	case "R", "E", "B":
		st.State = plugins.StateRunning
	case "S", "U":
		st.State = plugins.StateRunning
		st.Reason = joinReason("suspended", r.Comment)
	case "F", "X", "C":
		fin, ok := d.finished(r)
		if !ok {
			return st, false
		}
		fin.Raw, fin.Started, fin.Node = st.Raw, st.Started, st.Node
		fin.Ended = d.parseTime(r.End)
		if fin.Ended.IsZero() {
			fin.Ended = d.parseTime(r.Modified)
		}
		return fin, true
	case "M":
		st.State = plugins.StateLost
		st.Reason = joinReason("moved to another PBS server", r.Comment)
	default:
		st.State = plugins.StateLost
		st.Reason = joinReason("unknown PBS job state "+quoteState(r.State), r.Comment)
	}
	return st, true
}

func quoteState(s string) string {
	if len(s) > 16 {
		s = s[:16]
	}
	return `"` + s + `"`
}

func joinReason(what, comment string) string {
	if comment == "" {
		return what
	}
	return what + ": " + comment
}

// parseTime reads qstat's "Wed Apr 14 23:34:17 2021" in the cluster's zone.
func (d *Dialect) parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.ParseInLocation(time.ANSIC, strings.TrimSpace(s), d.loc())
	if err != nil {
		return time.Time{}
	}
	return t
}
