package detached

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// Files of a detached job, in its folder (see the package comment).
const (
	RunScript = ".hpcbot-run.sh"
	PIDFile   = ".hpcbot-pid"
	QueueDir  = ".hpcbot-queue" // below upload_path
)

// Dialect builds the commands of the ssh and local plugins.
type Dialect struct {
	name    string
	local   bool
	maxJobs int // 0: no cap, start at once
}

var (
	_ cluster.Dialect             = (*Dialect)(nil)
	_ cluster.ConfigurableDialect = (*Dialect)(nil)
	_ cluster.JobFinder           = (*Dialect)(nil)
)

// NewSSHDialect is the dialect of the `ssh` plugin: no cap on concurrent jobs
// unless the cluster sets max_jobs.
func NewSSHDialect() *Dialect { return &Dialect{name: "ssh"} }

// NewLocalDialect is the dialect of the `local` plugin: at most max_jobs jobs at
// once, default the number of CPUs of this host.
func NewLocalDialect() *Dialect {
	return &Dialect{name: "local", local: true, maxJobs: runtime.NumCPU()}
}

// NewDialectMaxJobs is a dialect with an explicit cap (0: none), for tests and drop-ins.
func NewDialectMaxJobs(name string, maxJobs int) *Dialect {
	return &Dialect{name: name, maxJobs: maxJobs}
}

// Name is "ssh" or "local".
func (d *Dialect) Name() string { return d.name }

// MaxJobs is the cap on concurrent jobs (0: none).
func (d *Dialect) MaxJobs() int { return d.maxJobs }

// Configure takes max_jobs from the cluster.
func (d *Dialect) Configure(c plugins.Cluster) error {
	switch {
	case c.MaxJobs < 0:
		return fmt.Errorf("max_jobs %d is negative: use 0 for the default", c.MaxJobs)
	case c.MaxJobs > 0:
		d.maxJobs = c.MaxJobs
	case d.local:
		d.maxJobs = runtime.NumCPU()
	default:
		d.maxJobs = 0
	}
	return nil
}

// VersionCommand checks the tools the dialect relies on and prints the system.
func (d *Dialect) VersionCommand() string {
	tools := "setsid nohup"
	if d.maxJobs > 0 {
		tools += " flock"
	}
	return "for t in " + tools + "; do command -v $t >/dev/null 2>&1 || { echo \"hpcbot: $t not found\" >&2; exit 127; }; done; uname -sr"
}

// ParseVersion reports "ssh (Linux 6.1.0)".
func (d *Dialect) ParseVersion(r cluster.RunResult) (string, error) {
	out := strings.TrimSpace(string(r.Stdout))
	if r.ExitCode != 0 || out == "" {
		return "", fmt.Errorf("exit %d: %s", r.ExitCode, strings.TrimSpace(string(r.Stderr)))
	}
	line, _, _ := strings.Cut(out, "\n")
	v := d.name + " (" + line
	if d.maxJobs > 0 {
		v += ", max_jobs " + strconv.Itoa(d.maxJobs)
	}
	return v + ")", nil
}

// outName is the base name of the program's stdout and stderr files.
func outName(jobName string) string {
	if jobName == "" || cluster.CheckFolder(jobName) != nil {
		return "hpcbot"
	}
	return jobName
}

// prelude defines hb_alive DIR: true while the job whose pid file is in DIR runs.
const prelude = `hb_alive() {
	[ -r "$1/` + PIDFile + `" ] || return 1
	read -r hb_pid hb_boot hb_start hb_t0 <"$1/` + PIDFile + `" || return 1
	case $hb_pid in ''|*[!0-9]*) return 1;; esac
	kill -0 "$hb_pid" 2>/dev/null || return 1
	if [ "$hb_boot" != - ] && [ -r /proc/sys/kernel/random/boot_id ]; then
		[ "$(cat /proc/sys/kernel/random/boot_id)" = "$hb_boot" ] || return 1
	fi
	if [ -r "/proc/$hb_pid/stat" ]; then
		hb_st=$(sed 's/.*) //' "/proc/$hb_pid/stat" 2>/dev/null) || return 1
		set -- $hb_st
		[ "$1" != Z ] || return 1
		[ "$hb_start" = - ] || [ "$hb_start" = "${20}" ] || return 1
	fi
	return 0
}
hb_nap() { sleep 0.1 2>/dev/null || sleep 1; }
hb_waitpid() {
	hb_i=0
	while [ ! -e "$1/` + PIDFile + `" ] && [ ! -e "$1/` + cluster.ExitCodeFile + `" ] && [ "$hb_i" -lt 100 ]; do hb_nap; hb_i=$((hb_i+1)); done
}
`

// dispatchScript starts queued jobs while fewer than $3 run; $1 is the queue
// folder, $2 upload_path. It runs under flock on $1/lock.
const dispatchScript = prelude + `Q=$1; B=$2; M=$3
n=0
for r in "$Q"/running/*; do
	[ -e "$r" ] || continue
	f=${r##*/}
	if [ ! -e "$B/$f/` + cluster.ExitCodeFile + `" ] && hb_alive "$B/$f"; then n=$((n+1)); else rm -f "$r"; fi
done
for p in $(ls "$Q/pending" 2>/dev/null | sort); do
	[ "$n" -lt "$M" ] || break
	f=${p#*+}; d=$B/$f
	if [ -e "$d/` + cluster.CancelledFile + `" ] || [ ! -e "$d/` + RunScript + `" ]; then rm -f "$Q/pending/$p"; continue; fi
	: >"$Q/running/$f"
	(cd "$d" && setsid nohup sh ` + RunScript + ` >/dev/null 2>&1 </dev/null &)
	hb_waitpid "$d"
	rm -f "$Q/pending/$p"
	n=$((n+1))
done
`

// queue returns the queue folder and upload path of a calculation folder, as
// seen from the login directory.
func queue(remoteDir string) (q, base string) {
	base = path.Dir(remoteDir)
	return path.Join(base, QueueDir), base
}

// Inside a calculation folder (the job script, and commands that cd into the
// folder) the queue and upload path are reached relatively, so a relative
// upload_path works wherever the command started.
const (
	queueFromFolder = "../" + QueueDir
	baseFromFolder  = ".."
)

// dispatchCommand runs the dispatcher under the queue's lock; q and base as seen
// from the directory the command runs in.
func (d *Dialect) dispatchCommand(q, base string) string {
	return "flock -o " + shellquote.Quote(q+"/lock") + " sh -c " + shellquote.Quote(dispatchScript) +
		" sh " + shellquote.Quote(q) + " " + shellquote.Quote(base) + " " + strconv.Itoa(d.maxJobs)
}

// BatchScript is the job script. The detached dialect runs it the same way for
// both launch modes (see SubmitCommand); in batch launch the generic code also
// keeps a copy as hpcbot-job.sh.
func (d *Dialect) BatchScript(req plugins.SubmitRequest, remoteDir string) ([]byte, error) {
	if len(req.Argv) == 0 {
		return nil, errors.New("empty argv")
	}
	for _, a := range req.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, errors.New("argv contains a NUL byte")
		}
	}
	name := outName(req.JobName)
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "# hpcbot job %s, calculation %d\n", name, req.CalcID)
	b.WriteString("# started in its folder by the submit command or the queue's dispatcher\n")
	b.WriteString("hb_boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null) || hb_boot=\n")
	b.WriteString("hb_start=$(sed 's/.*) //' /proc/$$/stat 2>/dev/null | cut -d' ' -f20)\n")
	fmt.Fprintf(&b, "printf '%%s %%s %%s %%s\\n' \"$$\" \"${hb_boot:--}\" \"${hb_start:--}\" \"$(date +%%s)\" >%s.tmp && mv -f %s.tmp %s\n", PIDFile, PIDFile, PIDFile)
	fmt.Fprintf(&b, "%s >%s 2>%s </dev/null\n", shellquote.Join(req.Argv), shellquote.Quote(name+".out"), shellquote.Quote(name+".err"))
	b.WriteString("rc=$?\n")
	b.WriteString(cluster.ExitCodeScript() + "\n")
	if d.maxJobs > 0 {
		b.WriteString(d.dispatchCommand(queueFromFolder, baseFromFolder) + " >/dev/null 2>&1\n")
	}
	b.WriteString("exit \"$rc\"\n")
	return []byte(b.String()), nil
}

const jobMark = "hpcbot-detached-job: "

// SubmitCommand writes the job script into the folder and starts it detached
// (no cap) or enqueues it and runs the dispatcher (cap). It prints the job id,
// the folder name, once the job's pid is recorded or it is queued.
func (d *Dialect) SubmitCommand(req plugins.SubmitRequest, remoteDir, _ string) string {
	body, err := d.BatchScript(req, remoteDir)
	if err != nil {
		// Submit checked argv; an impossible script must still fail, not run.
		return "echo " + shellquote.Quote("hpcbot: "+err.Error()) + " >&2; exit 2"
	}
	folder := path.Base(remoteDir)
	var b strings.Builder
	b.WriteString(prelude)
	fmt.Fprintf(&b, "cd %s || exit 1\n", shellquote.Quote(remoteDir))
	fmt.Fprintf(&b, "printf '%%s' %s >%s.tmp && mv -f %s.tmp %s || exit 1\n", shellquote.Quote(string(body)), RunScript, RunScript, RunScript)
	if d.maxJobs > 0 {
		qq := shellquote.Quote(queueFromFolder)
		fmt.Fprintf(&b, "mkdir -p %s/pending %s/running || exit 1\n", qq, qq)
		fmt.Fprintf(&b, ": >%s/pending/\"$(date +%%s%%N)\"+%s || exit 1\n", qq, shellquote.Quote(folder))
		b.WriteString(d.dispatchCommand(queueFromFolder, baseFromFolder) + " || exit 1\n")
	} else {
		b.WriteString("setsid nohup sh " + RunScript + " >/dev/null 2>&1 </dev/null &\n")
		b.WriteString("hb_waitpid .\n")
	}
	fmt.Fprintf(&b, "printf '%%s%%s\\n' %s %s\n", shellquote.Quote(jobMark), shellquote.Quote(folder))
	return b.String()
}

// ParseSubmit finds the job id SubmitCommand printed; the regex is not used.
func (d *Dialect) ParseSubmit(out []byte, _ string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if id, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), jobMark); ok && cluster.CheckFolder(id) == nil {
			return id, nil
		}
	}
	return "", errors.New("no job id in launcher output")
}

const pollMark = "@@hpcbot-job "

// PollCommand reports every job's state from its files, in one command; with a
// cap it first runs the dispatcher, so a queue moves on even if no job ended
// (after a reboot, say).
func (d *Dialect) PollCommand(jobs []plugins.JobRef, remoteDirs []string) string {
	if len(jobs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(prelude)
	q := ""
	if d.maxJobs > 0 {
		var base string
		q, base = queue(remoteDirs[0])
		b.WriteString(d.dispatchCommand(q, base) + " >/dev/null 2>&1\n")
	}
	fmt.Fprintf(&b, "Q=%s\n", shellquote.Quote(q))
	b.WriteString(`p() {
	c=0; [ -e "$2/` + cluster.CancelledFile + `" ] && c=1
	if [ -r "$2/` + cluster.ExitCodeFile + `" ]; then printf '` + pollMark + `%s exit %s %s\n' "$1" "$c" "$(cat "$2/` + cluster.ExitCodeFile + `")"; return; fi
	if hb_alive "$2"; then printf '` + pollMark + `%s running %s %s\n' "$1" "$c" "$hb_t0"; return; fi
	if [ -r "$2/` + cluster.ExitCodeFile + `" ]; then printf '` + pollMark + `%s exit %s %s\n' "$1" "$c" "$(cat "$2/` + cluster.ExitCodeFile + `")"; return; fi
	if [ -n "$Q" ]; then for e in "$Q"/pending/*+"$3"; do [ -e "$e" ] && { printf '` + pollMark + `%s pending %s\n' "$1" "$c"; return; }; done; fi
	if [ -e "$2/` + PIDFile + `" ]; then printf '` + pollMark + `%s dead %s\n' "$1" "$c"; return; fi
	printf '` + pollMark + `%s none %s\n' "$1" "$c"
}
`)
	for i, j := range jobs {
		fmt.Fprintf(&b, "p %d %s %s\n", i, shellquote.Quote(remoteDirs[i]), shellquote.Quote(j.Folder))
	}
	return b.String()
}

// ParsePoll reads PollCommand's lines. A job whose process died without an exit
// code, or that never started, is left out: the generic code then looks for
// evidence and, finding none, reports it lost and later finished-unknown.
func (d *Dialect) ParsePoll(r cluster.RunResult, jobs []plugins.JobRef) (map[string]plugins.JobStatus, error) {
	m := make(map[string]plugins.JobStatus, len(jobs))
	answered := 0
	sc := bufio.NewScanner(bytes.NewReader(r.Stdout))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), pollMark)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 3 {
			continue
		}
		i, err := strconv.Atoi(f[0])
		if err != nil || i < 0 || i >= len(jobs) {
			continue
		}
		answered++
		id := jobs[i].JobID
		cancelled := f[2] == "1"
		st := plugins.JobStatus{JobID: id}
		switch f[1] {
		case "exit":
			code, end, ok := cluster.ParseExitCodeLine(strings.Join(f[3:], " "))
			if !ok {
				continue // someone else's garbage: no evidence
			}
			st = cluster.ExitFile{ExitCode: &code, Ended: end, Cancelled: cancelled}.Status(id)
		case "running":
			st.State, st.Raw = plugins.StateRunning, "running"
			if len(f) > 3 {
				if sec, err := strconv.ParseInt(f[3], 10, 64); err == nil && sec > 0 {
					st.Started = time.Unix(sec, 0)
				}
			}
		case "pending":
			st.State, st.Raw, st.Reason = plugins.StatePending, "queued", "waiting for a free slot (max_jobs)"
			if cancelled {
				st.State, st.Raw, st.Reason = plugins.StateCancelled, "cancelled", "cancelled by hpcbot before it started"
			}
		case "dead", "none":
			if !cancelled {
				continue
			}
			st.State, st.Raw, st.Reason = plugins.StateCancelled, "cancelled", "cancelled by hpcbot"
		default:
			continue
		}
		m[id] = st
	}
	if answered == 0 && len(jobs) > 0 {
		return nil, fmt.Errorf("poll: no answer (exit %d): %s", r.ExitCode, strings.TrimSpace(string(r.Stderr)))
	}
	return m, nil
}

// FinishedCommand is empty: the files PollCommand reads are all there is.
func (d *Dialect) FinishedCommand([]plugins.JobRef) string { return "" }

// ParseFinished is never called (FinishedCommand is empty).
func (d *Dialect) ParseFinished(cluster.RunResult, []plugins.JobRef) (map[string]plugins.JobStatus, error) {
	return map[string]plugins.JobStatus{}, nil
}

// CancelCommand drops a queued job, or sends SIGTERM to a running job's process
// group and SIGKILL if it is still alive 10 s later. With a cap it holds the
// queue's lock, so the dispatcher cannot be starting the job meanwhile, and runs
// the dispatcher afterwards to fill the freed slot.
func (d *Dialect) CancelCommand(job plugins.JobRef, remoteDir string) string {
	body := `cd "$1" 2>/dev/null || exit 0
: >` + cluster.CancelledFile + `
if [ -n "$2" ]; then rm -f "$2"/pending/*+"$3"; fi
if hb_alive .; then
	kill -TERM -"$hb_pid" 2>/dev/null || kill -TERM "$hb_pid" 2>/dev/null
	i=0
	while hb_alive . && [ "$i" -lt 100 ]; do hb_nap; i=$((i+1)); done
	if hb_alive .; then kill -KILL -"$hb_pid" 2>/dev/null || kill -KILL "$hb_pid" 2>/dev/null; fi
fi
exit 0
`
	args := " sh " + shellquote.Quote(remoteDir)
	if d.maxJobs == 0 {
		return "sh -c " + shellquote.Quote(prelude+body) + args + " '' ''"
	}
	q, base := queue(remoteDir)
	args += " " + shellquote.Quote(queueFromFolder) + " " + shellquote.Quote(job.Folder)
	return "mkdir -p " + shellquote.Quote(q) + " 2>/dev/null\n" +
		"flock -o " + shellquote.Quote(q+"/lock") + " sh -c " + shellquote.Quote(prelude+body) + args + "\n" +
		d.dispatchCommand(q, base) + " >/dev/null 2>&1; exit 0"
}

// StreamFiles are where the job script sends the program's output and error.
func (d *Dialect) StreamFiles(req plugins.TailRequest) (string, string) {
	name := outName(req.JobName)
	return name + ".out", name + ".err"
}

// CancelDone: the cancel command exits 0 unless the shell itself failed.
func (d *Dialect) CancelDone(r cluster.RunResult) bool { return r.ExitCode == 0 }

// FindCommand prints the folder name when the folder shows that its job was
// started or queued (used after an interrupted submission).
func (d *Dialect) FindCommand(req plugins.SubmitRequest, remoteDir string) string {
	folder := shellquote.Quote(path.Base(remoteDir))
	var b strings.Builder
	fmt.Fprintf(&b, "cd %s 2>/dev/null || exit 0\n", shellquote.Quote(remoteDir))
	fmt.Fprintf(&b, "if [ -e %s ] || [ -e %s ]; then echo %s; exit 0; fi\n", PIDFile, cluster.ExitCodeFile, folder)
	if d.maxJobs > 0 {
		q := shellquote.Quote(queueFromFolder)
		fmt.Fprintf(&b, "for e in %s/pending/*+%s %s/running/%s; do if [ -e \"$e\" ]; then echo %s; exit 0; fi; done\n",
			q, folder, q, folder, folder)
	}
	return b.String()
}

// ParseFind returns the folder name if FindCommand printed it.
func (d *Dialect) ParseFind(r cluster.RunResult) ([]string, error) {
	if r.ExitCode != 0 {
		return nil, fmt.Errorf("find: exit %d: %s", r.ExitCode, strings.TrimSpace(string(r.Stderr)))
	}
	var ids []string
	for _, l := range strings.Fields(string(r.Stdout)) {
		if cluster.CheckFolder(l) == nil {
			ids = append(ids, l)
			break
		}
	}
	return ids, nil
}
