package cluster

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
)

// SubmitLaunchTimeout bounds how long one launcher (sbatch, qsub, a wrapper
// program) may run; the caller's own deadline does not apply to it (see Submit).
const SubmitLaunchTimeout = 5 * time.Minute

// SubmitAdoptedFile holds the id of a job that Submit adopted (found by name)
// after an interrupted submission; a repeat returns it.
const SubmitAdoptedFile = ".hpcbot-submit/adopted"

// Markers the submit wrapper prints before the launcher's saved output.
const (
	markFresh       = "hpcbot-submit:fresh"       // this call created the lock and launched
	markExisting    = "hpcbot-submit:existing"    // an earlier call had created it
	markNoDir       = "hpcbot-submit:nodir"       // the folder is missing (not staged)
	markNoScript    = "hpcbot-submit:noscript"    // the batch script could not be written
	markRC          = "hpcbot-submit:rc "         // the launcher's exit code follows; then its output
	markAdopted     = "hpcbot-submit:adopted "    // a job id found by name follows
	markInterrupted = "hpcbot-submit:interrupted" // lock without outcome: in flight or the launcher died
)

// SubmitWrapper wraps a launch command so that it runs at most once per folder,
// however often and however concurrently it is called, and a repeat prints what
// the first run printed:
//
//   - mkdir of the lock folder is atomic: exactly one caller creates it and launches;
//   - the launcher's output goes to a file, its exit code to a temp file renamed
//     into place, so the rc file exists only once the output is complete;
//   - SIGHUP and SIGPIPE are ignored, so a dropped SSH connection does not kill
//     the launcher between its start and the rc file (sbatch inherits this);
//   - a caller that finds the lock but no rc waits up to waitSeconds for it, then
//     reports "interrupted" and never launches: the first launcher is still running,
//     or it died at a point where no one can tell whether it started a job.
//
// launch runs in a subshell started in the login directory, like every other
// command, so a dialect's own `cd <dir>` works with a relative upload_path too.
//
// A non-nil script is written to BatchScriptName in dir (mode 0755) by the
// call that takes the lock, before it launches; a repeat leaves it alone, so no
// launcher ever reads a script being rewritten. It travels inside the command
// itself, as one shell-quoted word (shellquote.Quote) that printf '%s' writes
// byte for byte, so the script and the submission take one remote command and
// arrive whole or not at all. Nothing in the script can end the word early:
// inside single quotes every character but the quote itself is literal, and
// Quote writes each quote as quote, backslash, quote, quote (close the quotes,
// an escaped quote, reopen); see
// https://pubs.opengroup.org/onlinepubs/9699919799/utilities/V3_chap02.html#tag_18_02_02.
// Unlike a here-document there is no delimiter to collide with. The caller
// keeps the command within maxCommandLen and the script free of NUL bytes (see
// inlineScript). A script that cannot be written launches nothing and gives
// the lock back.
//
// The wrapper starts as few processes as it can (each costs milliseconds on a
// busy login node): builtins read the saved exit code and adopted id.
//
// The output is: a line fresh|existing|nodir|noscript, then rc N and the saved
// output, or adopted ID, or interrupted (noscript: the shell's message is on stderr).
func SubmitWrapper(dir string, script []byte, launch string, waitSeconds int) string {
	var b strings.Builder
	b.WriteString("trap '' HUP PIPE\nhb_home=${PWD:-$(pwd)}\n")
	fmt.Fprintf(&b, "cd %s 2>/dev/null || { echo %s; exit 0; }\n", shellquote.Quote(dir), markNoDir)
	fmt.Fprintf(&b, "if mkdir %s 2>/dev/null; then\n", SubmitLockDir)
	if script != nil {
		fmt.Fprintf(&b, "{ printf '%%s' %s >%s && chmod 755 %s; } || { rmdir %s; echo %s; exit 0; }\n",
			shellquote.Quote(string(script)), BatchScriptName, BatchScriptName, SubmitLockDir, markNoScript)
	}
	fmt.Fprintf(&b, "echo %s\n", markFresh)
	fmt.Fprintf(&b, "( cd \"$hb_home\" && %s\n) >%s 2>&1 </dev/null\n", launch, SubmitOutFile)
	fmt.Fprintf(&b, "echo $? >%s.tmp && mv -f %s.tmp %s\n", SubmitRCFile, SubmitRCFile, SubmitRCFile)
	fmt.Fprintf(&b, "else\necho %s\nfi\n", markExisting)
	fmt.Fprintf(&b, "i=0\nwhile [ ! -f %s ] && [ ! -f %s ] && [ \"$i\" -lt %d ]; do sleep 1; i=$((i+1)); done\n",
		SubmitRCFile, SubmitAdoptedFile, waitSeconds)
	fmt.Fprintf(&b, "if [ -f %s ]; then read -r hb_v <%s; printf '%%s%%s\\n' %s \"$hb_v\"; cat %s; exit 0; fi\n",
		SubmitRCFile, SubmitRCFile, shellquote.Quote(markRC), SubmitOutFile)
	fmt.Fprintf(&b, "if [ -f %s ]; then read -r hb_v <%s; printf '%%s%%s\\n' %s \"$hb_v\"; exit 0; fi\n",
		SubmitAdoptedFile, SubmitAdoptedFile, shellquote.Quote(markAdopted))
	fmt.Fprintf(&b, "echo %s\n", markInterrupted)
	return b.String()
}

// submitOutcome is SubmitWrapper's output, parsed.
type submitOutcome struct {
	fresh       bool
	noDir       bool
	noScript    bool
	interrupted bool
	adopted     string // job id, when adopted
	rc          int
	out         []byte // the launcher's output
}

func parseSubmitOutput(stdout []byte) (submitOutcome, error) {
	var o submitOutcome
	first, rest, _ := bytes.Cut(stdout, []byte("\n"))
	switch string(bytes.TrimSpace(first)) {
	case markNoDir:
		o.noDir = true
		return o, nil
	case markNoScript:
		o.noScript = true
		return o, nil
	case markFresh:
		o.fresh = true
	case markExisting:
	default:
		return o, errNoMarker
	}
	second, rest, _ := bytes.Cut(rest, []byte("\n"))
	line := string(bytes.TrimRight(second, "\r"))
	switch {
	case line == markInterrupted:
		o.interrupted = true
	case strings.HasPrefix(line, markAdopted):
		o.adopted = strings.TrimSpace(strings.TrimPrefix(line, markAdopted))
		if o.adopted == "" {
			return o, fmt.Errorf("empty adopted job id")
		}
	case strings.HasPrefix(line, markRC):
		rc, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, markRC)))
		if err != nil {
			return o, fmt.Errorf("bad launcher exit code %q", line)
		}
		o.rc, o.out = rc, rest
	default:
		return o, errNoMarker
	}
	return o, nil
}

// Submit launches the calculation once per folder (see SubmitWrapper); a repeat
// returns the first job with Existing set.
func (s *Scheduler) Submit(ctx context.Context, req plugins.SubmitRequest) (plugins.SubmitResult, error) {
	tr, upload, err := s.transport()
	if err != nil {
		return plugins.SubmitResult{}, err
	}
	dir, err := remoteDir(upload, req.Folder)
	if err != nil {
		return plugins.SubmitResult{}, err
	}
	if len(req.Argv) == 0 {
		return plugins.SubmitResult{}, plugins.Errorf(plugins.KindPermanent, "submit calc %d: empty argv", req.CalcID)
	}
	wait := int(s.submitWait.Seconds())
	script := ""
	var cmd string
	switch req.Launch {
	case plugins.LaunchBatch:
		body, err := s.d.BatchScript(req, dir)
		if err != nil {
			return plugins.SubmitResult{}, plugins.Errorf(plugins.KindPermanent, "submit calc %d: batch script: %w", req.CalcID, err)
		}
		script = BatchScriptName
		launch := s.d.SubmitCommand(req, dir, script)
		var ok bool
		if cmd, ok = inlineScript(dir, body, launch, wait); !ok {
			// Too long for one command (or holding a NUL byte): written on its own.
			// Rewriting it on a repeat is harmless: the scheduler copied it at submission.
			if err := tr.WriteFile(ctx, path.Join(dir, script), body, 0o755); err != nil {
				return plugins.SubmitResult{}, fmt.Errorf("submit calc %d: write batch script: %w", req.CalcID, err)
			}
			cmd = SubmitWrapper(dir, nil, launch, wait)
		}
	case plugins.LaunchWrapper:
		cmd = SubmitWrapper(dir, nil, s.d.SubmitCommand(req, dir, script), wait)
	default:
		return plugins.SubmitResult{}, plugins.Errorf(plugins.KindPermanent, "submit calc %d: unknown launch %q", req.CalcID, req.Launch)
	}
	// The wrapper must never be killed once it holds the lock: a launcher killed
	// between the lock and its exit-code file leaves a submission no one can judge
	// (stuck until give_up_after). A caller that goes away (hpcbot killed, a
	// deadline) therefore does not cancel it; only a generous bound of its own does.
	runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.submitWait+SubmitLaunchTimeout)
	defer cancel()
	r, err := tr.Run(runCtx, cmd)
	if err != nil {
		return plugins.SubmitResult{}, fmt.Errorf("submit calc %d: %w", req.CalcID, err)
	}
	o, err := parseSubmitOutput(r.Stdout)
	if err != nil {
		return plugins.SubmitResult{}, plugins.Errorf(plugins.KindTransient, "submit calc %d: %w (exit %d: %s)", req.CalcID, err, r.ExitCode, brief(r))
	}
	switch {
	case o.noDir:
		return plugins.SubmitResult{}, plugins.Errorf(plugins.KindNotFound, "submit calc %d: folder %s not found (not staged?)", req.CalcID, dir)
	case o.noScript:
		// As an SFTP write refused by the server (quota, a read-only file system):
		// the answer would be the same next time.
		return plugins.SubmitResult{}, plugins.Errorf(plugins.KindPermanent, "submit calc %d: write batch script %s: %s", req.CalcID, path.Join(dir, script), brief(r))
	case o.adopted != "":
		return plugins.SubmitResult{JobID: o.adopted, Existing: true, Output: "adopted job " + o.adopted}, nil
	case o.interrupted:
		return s.adopt(ctx, tr, req, dir)
	}
	out := string(o.out)
	if o.rc != 0 {
		if sr, ok := s.d.(SubmitRetrier); ok && sr.NothingSubmitted(o.out, o.rc) {
			// Move the record aside (kept for the operator) so the next call launches
			// again, but only the failed record we read: never one a concurrent call
			// has meanwhile replaced with a successful launch.
			aside := SubmitLockDir + ".failed.$(date +%s)$$"
			cmd := "cd " + shellquote.Quote(dir) + " && [ \"$(cat " + SubmitRCFile + " 2>/dev/null)\" = " +
				strconv.Itoa(o.rc) + " ] && mv " + SubmitLockDir + " " + aside
			if _, err := tr.Run(ctx, cmd); err != nil {
				return plugins.SubmitResult{}, fmt.Errorf("submit calc %d: clear failed submission: %w", req.CalcID, err)
			}
			return plugins.SubmitResult{}, plugins.Errorf(plugins.KindTransient, "submit calc %d: launcher exited %d, nothing submitted: %s", req.CalcID, o.rc, excerpt(out))
		}
		return plugins.SubmitResult{}, plugins.Errorf(plugins.KindPermanent, "submit calc %d: launcher exited %d: %s", req.CalcID, o.rc, excerpt(out))
	}
	id, err := s.d.ParseSubmit(o.out, s.jobIDRegex())
	if err != nil {
		return plugins.SubmitResult{}, plugins.Errorf(plugins.KindPermanent, "submit calc %d: %w: %s", req.CalcID, err, excerpt(out))
	}
	res := plugins.SubmitResult{JobID: id, Output: out, Existing: !o.fresh}
	s.log.Info("submitted", "calc", req.CalcID, "job", id, "existing", res.Existing)
	return res, nil
}

// inlineScript is SubmitWrapper with the batch script inside the command, so
// that writing the script and submitting it take one remote command; ok is false
// when that command would be longer than maxCommandLen or the script holds a
// NUL byte, which no shell word can carry.
func inlineScript(dir string, script []byte, launch string, waitSeconds int) (cmd string, ok bool) {
	if len(script) > maxCommandLen || bytes.IndexByte(script, 0) >= 0 {
		return "", false
	}
	if script == nil {
		script = []byte{} // an empty script is still written
	}
	cmd = SubmitWrapper(dir, script, launch, waitSeconds)
	return cmd, len(cmd) <= maxCommandLen
}

func (s *Scheduler) jobIDRegex() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cluster.JobIDRegex
}

// adopt handles a submission that started but recorded no outcome: a job found by
// name is recorded as this folder's job; otherwise the caller retries later.
func (s *Scheduler) adopt(ctx context.Context, tr Transport, req plugins.SubmitRequest, dir string) (plugins.SubmitResult, error) {
	interrupted := plugins.Errorf(plugins.KindTransient,
		"submit calc %d: submission in progress or interrupted (%s exists without an exit code); not launching again", req.CalcID, path.Join(dir, SubmitLockDir))
	f, ok := s.d.(JobFinder)
	if !ok {
		return plugins.SubmitResult{}, interrupted
	}
	cmd := f.FindCommand(req, dir)
	if cmd == "" {
		return plugins.SubmitResult{}, interrupted
	}
	r, err := tr.Run(ctx, cmd)
	if err != nil {
		return plugins.SubmitResult{}, fmt.Errorf("submit calc %d: look up interrupted submission: %w", req.CalcID, err)
	}
	ids, err := f.ParseFind(r)
	if err != nil {
		return plugins.SubmitResult{}, fmt.Errorf("submit calc %d: look up interrupted submission: %w", req.CalcID, err)
	}
	if len(ids) == 0 {
		return plugins.SubmitResult{}, interrupted
	}
	if len(ids) > 1 {
		s.log.Warn("several jobs for one calculation; adopting the oldest", "calc", req.CalcID, "jobs", strings.Join(ids, ","))
	}
	id := ids[0]
	if err := tr.WriteFile(ctx, path.Join(dir, SubmitAdoptedFile), []byte(id+"\n"), 0o644); err != nil {
		return plugins.SubmitResult{}, fmt.Errorf("submit calc %d: record adopted job %s: %w", req.CalcID, id, err)
	}
	s.log.Warn("adopted job of an interrupted submission", "calc", req.CalcID, "job", id)
	return plugins.SubmitResult{JobID: id, Existing: true, Output: "adopted job " + id}, nil
}
