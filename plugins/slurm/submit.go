// Submitting: the batch script (#SBATCH lines), the sbatch command and its job
// id, and finding a job submitted before (squeue and sacct by job name).

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

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// DefaultJobIDRegex finds the job id in a wrapper's output (sbatch's own message).
const DefaultJobIDRegex = `Submitted batch job (\d+)`

var (
	jobNameRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	resourceKeyRe = regexp.MustCompile(`^[a-z][a-z-]*$`)
)

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
