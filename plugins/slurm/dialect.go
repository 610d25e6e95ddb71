package slurm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// DefaultJobIDRegex finds the job id in a wrapper's output (sbatch's own message).
const DefaultJobIDRegex = `Submitted batch job (\d+)`

// sep separates squeue's fields: it appears in no field squeue prints (AiiDA's choice).
const sep = "^^^"

// squeueFormat: id, long state, reason, start, end, nodes (empty while pending).
const squeueFormat = "%i" + sep + "%T" + sep + "%r" + sep + "%S" + sep + "%e" + sep + "%N"

// timeEnv makes every Slurm command print times as 2026-11-26T17:53:25.
const timeEnv = "SLURM_TIME_FORMAT=standard"

// Dialect builds Slurm commands and parses their output. It holds no state.
type Dialect struct{}

var (
	_ cluster.Dialect       = Dialect{}
	_ cluster.JobFinder     = Dialect{}
	_ cluster.SubmitRetrier = Dialect{}
)

// NewDialect returns the Slurm dialect.
func NewDialect() Dialect { return Dialect{} }

// Name is "slurm".
func (Dialect) Name() string { return "slurm" }

// VersionCommand prints "slurm 22.05.8" (Debian: "slurm-wlm 22.05.8").
func (Dialect) VersionCommand() string { return "sinfo --version" }

var versionRe = regexp.MustCompile(`^slurm(?:-wlm)? (\d+\.\d+[^\s]*)`)

// ParseVersion returns "slurm 22.05.8".
func (Dialect) ParseVersion(r cluster.RunResult) (string, error) {
	out := strings.TrimSpace(string(r.Stdout))
	m := versionRe.FindStringSubmatch(out)
	if r.ExitCode != 0 || m == nil {
		return "", fmt.Errorf("sinfo --version: exit %d: %s", r.ExitCode, firstLine(out+" "+string(r.Stderr)))
	}
	return "slurm " + m[1], nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

var (
	jobNameRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	resourceKeyRe = regexp.MustCompile(`^[a-z][a-z-]*$`)
)

// jobIDRe is the shape of a Slurm job id hpcbot accepts: 123 or 123_4 (array task).
var jobIDRe = jobIDMatcher{}

type jobIDMatcher struct{}

// MatchString is ^[0-9]+(_[0-9]+)?$ without the regexp engine (poll builds it 10,000 times).
func (jobIDMatcher) MatchString(s string) bool {
	digits, under := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '_' && !under && digits > 0:
			under, digits = true, 0
		default:
			return false
		}
	}
	return digits > 0
}

// reserved are the sbatch options hpcbot sets itself or that would change how
// the script is submitted; a runner's resources may not set them.
var reserved = map[string]bool{
	"job-name": true, "comment": true, "output": true, "error": true, "chdir": true,
	"parsable": true, "wrap": true, "wait": true, "hold": true, "array": true,
	"export-file": true, "input": true, "test-only": true, "uid": true, "gid": true,
}

// sbatchWord quotes v for an #SBATCH line. sbatch splits those lines itself
// (src/sbatch/opt.c _get_argument): whitespace separates words, '"' and '\”
// quote, a backslash escapes the next character even inside quotes, and an
// unquoted '#' starts a comment. Control characters cannot be expressed at all,
// and Slurm before 20.02 blanked the word "packjob" anywhere on the line (now
// "hetjob" separates components), so both are refused.
func sbatchWord(v string) (string, error) {
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return "", fmt.Errorf("control character %q", r)
		}
	}
	low := strings.ToLower(v)
	if strings.Contains(low, "packjob") || strings.Contains(low, "hetjob") {
		return "", errors.New(`contains "hetjob" or "packjob", which sbatch reads as a job separator`)
	}
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:,=@%+/-") == "" {
		return v, nil
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String(), nil
}

// jobName is req.JobName, or hpcbot-<calc> when it is empty.
func jobName(req plugins.SubmitRequest) (string, error) {
	name := req.JobName
	if name == "" {
		name = "hpcbot-" + strconv.FormatUint(req.CalcID, 10)
	}
	if !jobNameRe.MatchString(name) {
		return "", fmt.Errorf("job name %q: want letters, digits, '.', '_', '-' (at most 100)", name)
	}
	return name, nil
}

// BatchScript is the job script: #SBATCH lines, then the program run in the
// folder, its exit code written to .hpcbot-exitcode atomically.
func (Dialect) BatchScript(req plugins.SubmitRequest, remoteDir string) ([]byte, error) {
	if len(req.Argv) == 0 {
		return nil, errors.New("empty argv")
	}
	for _, a := range req.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, errors.New("argv contains a NUL byte")
		}
	}
	name, err := jobName(req)
	if err != nil {
		return nil, err
	}
	comment, err := sbatchWord(req.Comment)
	if err != nil {
		return nil, fmt.Errorf("comment: %w", err)
	}
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", name)
	if req.Comment != "" {
		fmt.Fprintf(&b, "#SBATCH --comment=%s\n", comment)
	}
	fmt.Fprintf(&b, "#SBATCH --output=%s.out\n", name)
	fmt.Fprintf(&b, "#SBATCH --error=%s.err\n", name)
	keys := make([]string, 0, len(req.Resources))
	for k := range req.Resources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !resourceKeyRe.MatchString(k) || len(k) > 64 {
			return nil, fmt.Errorf("resource %q: want a long sbatch option name such as ntasks or mem-per-cpu", k)
		}
		if reserved[k] {
			return nil, fmt.Errorf("resource %q: hpcbot sets this sbatch option itself", k)
		}
		v := req.Resources[k]
		if v == "" {
			fmt.Fprintf(&b, "#SBATCH --%s\n", k)
			continue
		}
		w, err := sbatchWord(v)
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", k, err)
		}
		fmt.Fprintf(&b, "#SBATCH --%s=%s\n", k, w)
	}
	fmt.Fprintf(&b, "# hpcbot calculation %d\n", req.CalcID)
	if path.IsAbs(remoteDir) {
		fmt.Fprintf(&b, "cd %s || exit 1\n", shellquote.Quote(remoteDir))
	} else {
		// A path relative to the login directory; sbatch ran in the folder.
		b.WriteString("cd \"$SLURM_SUBMIT_DIR\" || exit 1\n")
	}
	b.WriteString(shellquote.Join(req.Argv) + "\n")
	b.WriteString("rc=$?\n")
	b.WriteString(cluster.ExitCodeScript() + "\n")
	b.WriteString("exit \"$rc\"\n")
	return []byte(b.String()), nil
}

const batchMark = "hpcbot-slurm-job: "

// SubmitCommand runs sbatch on the script (batch) or the program itself (wrapper), in remoteDir.
func (Dialect) SubmitCommand(req plugins.SubmitRequest, remoteDir, script string) string {
	cd := "cd " + shellquote.Quote(remoteDir) + " && "
	if script == "" {
		return cd + shellquote.Join(req.Argv)
	}
	return cd + "hb_out=$(sbatch --parsable " + shellquote.Quote(script) + ") && printf '%s%s\\n' " +
		shellquote.Quote(batchMark) + " \"$hb_out\""
}

// ParseSubmit reads the job id: the batch marker line ("123" or "123;cluster",
// as sbatch --parsable prints it), else the first group of the regex (the
// cluster's job_id_regex, or DefaultJobIDRegex).
func (Dialect) ParseSubmit(out []byte, jobIDRegex string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), batchMark)
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(strings.TrimSpace(rest), ";")
		if !jobIDRe.MatchString(id) {
			return "", fmt.Errorf("sbatch printed %q, not a job id", rest)
		}
		return id, nil
	}
	if jobIDRegex == "" {
		jobIDRegex = DefaultJobIDRegex
	}
	re, err := regexp.Compile(jobIDRegex)
	if err != nil {
		return "", fmt.Errorf("job_id_regex %q: %w", jobIDRegex, err)
	}
	if re.NumSubexp() < 1 {
		return "", fmt.Errorf("job_id_regex %q has no group for the id", jobIDRegex)
	}
	m := re.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no job id in launcher output (job_id_regex %q)", jobIDRegex)
	}
	id := string(m[1])
	if !jobIDRe.MatchString(id) {
		return "", fmt.Errorf("job_id_regex %q matched %q, not a Slurm job id", jobIDRegex, id)
	}
	return id, nil
}

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

// CancelCommand is scancel for the job.
func (Dialect) CancelCommand(job plugins.JobRef, _ string) string {
	if !jobIDRe.MatchString(job.JobID) {
		return "echo " + shellquote.Quote("hpcbot: not a Slurm job id: "+job.JobID) + " >&2; exit 2"
	}
	return "scancel " + job.JobID
}

// StreamFiles are the batch script's --output and --error: <job name>.out
// and .err in the calculation folder.
func (Dialect) StreamFiles(req plugins.TailRequest) (string, string) {
	name, err := jobName(plugins.SubmitRequest{CalcID: req.CalcID, JobName: req.JobName})
	if err != nil {
		return "", ""
	}
	return name + ".out", name + ".err"
}

// CancelDone: scancel exits 0, or the job is gone or finishing already.
func (Dialect) CancelDone(r cluster.RunResult) bool {
	if r.ExitCode == 0 {
		return true
	}
	out := string(r.Stderr) + string(r.Stdout)
	return strings.Contains(out, "Invalid job id specified") ||
		strings.Contains(out, "already completing or completed")
}

const findDirMark = "@@hpcbot-dir "

// FindCommand lists jobs named like req's (batch launch only: a wrapper names
// its own jobs), from squeue and from sacct (30 days back), with their working
// folders, after the folder's physical path.
func (Dialect) FindCommand(req plugins.SubmitRequest, remoteDir string) string {
	if req.Launch != plugins.LaunchBatch {
		return ""
	}
	name, err := jobName(req)
	if err != nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("export " + timeEnv + "\n")
	fmt.Fprintf(&b, "printf '%%s%%s\\n' %s \"$(cd %s && pwd -P)\"\n", shellquote.Quote(findDirMark), shellquote.Quote(remoteDir))
	fmt.Fprintf(&b, "squeue --me --noheader --states=all --name=%s --format=%s 2>/dev/null\n", name, shellquote.Quote("%i"+sep+"%Z"))
	fmt.Fprintf(&b, "sacct -X --noheader --parsable2 --name=%s -S now-30days -o JobID,WorkDir 2>/dev/null\n", name)
	b.WriteString("exit 0\n")
	return b.String()
}

// ParseFind returns the ids (numerically ascending, so the oldest first) of jobs
// whose working folder is the calculation's.
func (Dialect) ParseFind(r cluster.RunResult) ([]string, error) {
	dir := ""
	found := map[string]bool{}
	for line := range bytes.Lines(r.Stdout) {
		l := strings.TrimRight(string(line), "\r\n")
		if d, ok := strings.CutPrefix(l, findDirMark); ok {
			dir = d
			continue
		}
		var id, wd string
		if a, b, ok := strings.Cut(l, sep); ok {
			id, wd = a, b
		} else if a, b, ok := strings.Cut(l, "|"); ok {
			id, wd = a, b
		} else {
			continue
		}
		if dir != "" && jobIDRe.MatchString(id) && strings.TrimRight(wd, "/") == strings.TrimRight(dir, "/") {
			found[id] = true
		}
	}
	if dir == "" {
		return nil, fmt.Errorf("find: folder not resolved (exit %d)", r.ExitCode)
	}
	ids := make([]string, 0, len(found))
	for id := range found {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, _ := strconv.ParseUint(strings.SplitN(ids[i], "_", 2)[0], 10, 64)
		b, _ := strconv.ParseUint(strings.SplitN(ids[j], "_", 2)[0], 10, 64)
		if a != b {
			return a < b
		}
		return ids[i] < ids[j]
	})
	return ids, nil
}

// NothingSubmitted recognises sbatch failing before it reached slurmctld.
func (Dialect) NothingSubmitted(out []byte, exitCode int) bool {
	return exitCode != 0 && bytes.Contains(out, []byte("Unable to contact slurm controller (connect failure)"))
}
