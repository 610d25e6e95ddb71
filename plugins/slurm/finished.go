// Jobs squeue no longer lists: sacct, then scontrol, and the parsing of their
// sections.

package slurm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// Section markers of FinishedCommand's output.
const (
	markSacct    = "@@hpcbot-sacct "
	markScontrol = "@@hpcbot-scontrol"
	markEnd      = "@@hpcbot-end"
)

// scontrolEach is how many jobs FinishedCommand asks scontrol about one by one;
// above it, one `scontrol show job -o` lists every job Slurm holds (one RPC, as
// squeue(1) asks) and awk keeps ours.
const scontrolEach = 20

// FinishedCommand asks sacct about all the jobs at once, then scontrol about the
// jobs sacct did not list (no slurmdbd, or slurmdbd behind), in one shell. awk
// finds those jobs, so the work stays linear in the number of jobs.
func (Dialect) FinishedCommand(jobs []plugins.JobRef) string {
	var ids []string
	seen := map[string]bool{}
	for _, j := range jobs {
		if jobIDRe.MatchString(j.JobID) && !seen[j.JobID] {
			ids = append(ids, j.JobID)
			seen[j.JobID] = true
		}
	}
	if len(ids) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("export " + timeEnv + "\n")
	fmt.Fprintf(&b, "S=$(sacct -X --noheader --parsable2 -j %s -o JobID,State,ExitCode,Start,End,ElapsedRaw,AllocCPUS,NodeList 2>&1); rc=$?\n", strings.Join(ids, ","))
	fmt.Fprintf(&b, "printf '%%s%%s\\n%%s\\n' %s \"$rc\" \"$S\"\n", shellquote.Quote(markSacct))
	fmt.Fprintf(&b, "echo %s\n", markScontrol)
	// The ids sacct did not answer (all of them when it failed).
	fmt.Fprintf(&b, "M=$(printf '%%s\\n' \"$S\" | awk -F'|' -v rc=\"$rc\" -v ids=%s 'BEGIN { n = split(ids, a, \",\") } "+
		"rc == 0 { seen[$1] = 1 } END { for (i = 1; i <= n; i++) if (!(a[i] in seen)) print a[i] }')\n", strings.Join(ids, ","))
	fmt.Fprintf(&b, "set -- $M\nif [ $# -gt %d ]; then\n", scontrolEach)
	b.WriteString("\tscontrol show job -o 2>&1 | awk -v ids=\"$*\" 'BEGIN { n = split(ids, a, \" \"); for (i = 1; i <= n; i++) w[\"JobId=\" a[i]] = 1 } ($1 in w)'\n")
	b.WriteString("else\n\tfor j in $M; do scontrol show job -o \"$j\" 2>&1; done\nfi\n")
	fmt.Fprintf(&b, "echo %s\n", markEnd)
	return b.String()
}

// ParseFinished reads FinishedCommand's sections: sacct's lines when it exited 0
// (it fails without slurmdbd: "Slurm accounting storage is disabled"), then
// scontrol's one line per job ("Invalid job id specified" once Slurm forgot it).
func (Dialect) ParseFinished(r cluster.RunResult, jobs []plugins.JobRef) (map[string]plugins.JobStatus, error) {
	want := wanted(jobs)
	m := make(map[string]plugins.JobStatus, len(jobs))
	section := ""
	sacctOK := false
	ended := false
	for line := range bytes.Lines(r.Stdout) {
		l := strings.TrimRight(string(line), "\r\n")
		switch {
		case strings.HasPrefix(l, markSacct):
			section = "sacct"
			sacctOK = strings.TrimSpace(strings.TrimPrefix(l, markSacct)) == "0"
			continue
		case l == markScontrol:
			section = "scontrol"
			continue
		case l == markEnd:
			ended = true
			section = ""
			continue
		}
		switch section {
		case "sacct":
			if !sacctOK {
				continue
			}
			if id, st, ok := parseSacctLine(l); ok && want[id] {
				m[id] = st
			}
		case "scontrol":
			if id, st, ok := parseScontrolLine(l); ok && want[id] {
				if _, dup := m[id]; !dup {
					m[id] = st
				}
			}
		}
	}
	if !ended {
		return nil, fmt.Errorf("sacct/scontrol: output incomplete (exit %d): %s", r.ExitCode, firstLine(string(r.Stderr)))
	}
	return m, nil
}

// parseSacctLine reads "JobID|State|ExitCode|Start|End|ElapsedRaw|AllocCPUS|NodeList"
// (the accounting and the node list may be missing: older captures).
func parseSacctLine(l string) (string, plugins.JobStatus, bool) {
	f := strings.Split(l, "|")
	if (len(f) != 5 && len(f) != 7 && len(f) != 8) || !jobIDRe.MatchString(f[0]) {
		return "", plugins.JobStatus{}, false
	}
	st := status(f[0], f[1], "")
	st.ExitCode = parseExitCode(f[2])
	st.Started = parseTime(f[3])
	st.Ended = parseTime(f[4])
	if !st.State.Final() {
		st.ExitCode = nil // 0:0 of a running job means nothing yet
	}
	if len(f) == 8 {
		st.Node = nodeList(f[7])
	}
	if len(f) >= 7 && st.State.Final() {
		secs, err1 := strconv.ParseInt(f[5], 10, 64)
		cpus, err2 := strconv.Atoi(f[6])
		if err1 == nil && err2 == nil && secs >= 0 && cpus > 0 {
			st.Elapsed, st.AllocCPUs = time.Duration(secs)*time.Second, cpus
		}
	}
	return f[0], settle(st), true
}

// scontrolField returns the value of key in a `scontrol show job -o` line. Values
// of the fields read here contain no spaces, and they come before the free-text
// fields (Comment, Command, WorkDir...) that might.
func scontrolField(l, key string) (string, bool) {
	i := strings.Index(l, " "+key+"=")
	if i < 0 {
		if strings.HasPrefix(l, key+"=") {
			i = -1
		} else {
			return "", false
		}
	}
	v := l[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v, true
}

// parseScontrolLine reads one `scontrol show job -o` line.
func parseScontrolLine(l string) (string, plugins.JobStatus, bool) {
	if !strings.HasPrefix(l, "JobId=") {
		return "", plugins.JobStatus{}, false
	}
	id, _ := scontrolField(l, "JobId")
	state, ok := scontrolField(l, "JobState")
	if !ok || !jobIDRe.MatchString(id) {
		return "", plugins.JobStatus{}, false
	}
	reason, _ := scontrolField(l, "Reason")
	st := status(id, state, reason)
	if ec, ok := scontrolField(l, "ExitCode"); ok && st.State.Final() {
		st.ExitCode = parseExitCode(ec)
	}
	if s, ok := scontrolField(l, "StartTime"); ok {
		st.Started = parseTime(s)
	}
	if e, ok := scontrolField(l, "EndTime"); ok && st.State.Final() {
		st.Ended = parseTime(e)
	}
	if n, ok := scontrolField(l, "NodeList"); ok {
		st.Node = nodeList(n)
	}
	return id, settle(st), true
}
