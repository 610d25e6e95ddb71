// Polling: one squeue for all jobs and the parsing of its lines.

package slurm

import (
	"bytes"
	"fmt"
	"strings"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// squeueFormat: id, long state, reason, start, end, nodes (empty while pending).
const squeueFormat = "%i" + sep + "%T" + sep + "%r" + sep + "%S" + sep + "%e" + sep + "%N"

// idList is the comma-separated ids for --jobs/-j, only those that look like
// Slurm job ids; a single id is doubled so that squeue does not exit 1 for it
// once Slurm has forgotten it.
func idList(jobs []plugins.JobRef) string {
	var b strings.Builder
	n := 0
	for _, j := range jobs {
		if !jobIDRe.MatchString(j.JobID) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(j.JobID)
		n++
	}
	if n == 1 {
		s := b.String()
		return s + "," + s
	}
	return b.String()
}

// PollCommand is one squeue for all jobs, finished ones included (--states=all).
func (Dialect) PollCommand(jobs []plugins.JobRef, _ []string) string {
	ids := idList(jobs)
	if ids == "" {
		return ""
	}
	return timeEnv + " squeue --noheader --states=all --jobs=" + ids + " --format=" + shellquote.Quote(squeueFormat)
}

// ParsePoll reads squeue's lines. A job squeue does not list is left out; so are
// lines that do not parse (squeue prints whole lines, so such a line is noise).
// "Invalid job id specified" means none of the jobs is known any more.
func (Dialect) ParsePoll(r cluster.RunResult, jobs []plugins.JobRef) (map[string]plugins.JobStatus, error) {
	m := make(map[string]plugins.JobStatus, len(jobs))
	if r.ExitCode != 0 {
		if bytes.Contains(r.Stderr, []byte("Invalid job id specified")) {
			return m, nil
		}
		return nil, fmt.Errorf("squeue: exit %d: %s", r.ExitCode, firstLine(string(r.Stderr)))
	}
	want := wanted(jobs)
	var f [6]string
	for line := range strings.Lines(string(r.Stdout)) {
		n := splitFields(strings.TrimRight(line, "\r\n"), &f)
		if n < 5 {
			continue
		}
		id := strings.TrimSpace(f[0])
		if !want[id] {
			continue
		}
		st := status(id, f[1], f[2])
		st.Started = parseTime(f[3])
		if st.State.Final() {
			st.Ended = parseTime(f[4])
		}
		if n == 6 {
			st.Node = nodeList(f[5])
		}
		m[id] = settle(st)
	}
	return m, nil
}

// splitFields splits a squeue line into its fields at sep, without
// allocating, and returns how many there are: 5 (a line without the node
// list, as squeueFormat was before it) or 6; 0 for any other count.
func splitFields(line string, f *[6]string) int {
	for i := range f {
		var ok bool
		f[i], line, ok = strings.Cut(line, sep)
		if !ok {
			if i < 4 {
				return 0
			}
			return i + 1
		}
	}
	return 0 // more fields than squeueFormat has
}
