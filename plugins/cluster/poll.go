package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
)

// Poll asks the dialect's queue command about every job (one command, split
// only when it would exceed the kernel's argument limit), then asks the
// dialect's finished-jobs command about those the queue did not mention or
// mentioned as finished without an exit code, then reads the exit-code files
// of those still without an answer. A job with no trace anywhere is
// plugins.StateLost until the grace period has passed since it was first found
// missing, then plugins.StateUnknown. A job is never called succeeded without
// evidence: a scheduler's COMPLETED or an exit code of 0.
func (s *Scheduler) Poll(ctx context.Context, jobs []plugins.JobRef) ([]plugins.JobStatus, error) {
	tr, upload, err := s.transport()
	if err != nil {
		return nil, err
	}
	out := make([]plugins.JobStatus, len(jobs))
	var valid []plugins.JobRef
	var dirs []string
	var validIdx []int
	for i, j := range jobs {
		dir, err := remoteDir(upload, j.Folder)
		if err != nil || j.JobID == "" {
			// Our own store gave us this; report it rather than break every other job's poll.
			out[i] = plugins.JobStatus{JobID: j.JobID, State: plugins.StateLost, Reason: "invalid job reference"}
			s.log.Error("invalid job reference", "calc", j.CalcID, "job", j.JobID, "folder", j.Folder)
			continue
		}
		valid = append(valid, j)
		dirs = append(dirs, dir)
		validIdx = append(validIdx, i)
	}
	if len(valid) == 0 {
		return out, nil
	}

	known := make(map[string]plugins.JobStatus, len(valid))
	// 1. The queue.
	if err := runChunks(ctx, tr, valid, dirs, s.d.PollCommand, func(r RunResult, part []plugins.JobRef) error {
		m, err := s.d.ParsePoll(r, part)
		if err != nil {
			return err
		}
		for id, st := range m {
			known[id] = st
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}

	// 2. Accounting for jobs the queue does not know or knows only as finished,
	// and for the usage of jobs that just ended (read once: an ended job leaves
	// the active list).
	ask, askDirs := needDetail(valid, dirs, known, true)
	if len(ask) > 0 {
		finished := func(part []plugins.JobRef, _ []string) string { return s.d.FinishedCommand(part) }
		if err := runChunks(ctx, tr, ask, askDirs, finished, func(r RunResult, part []plugins.JobRef) error {
			m, err := s.d.ParseFinished(r, part)
			if err != nil {
				return err
			}
			for id, st := range m {
				if prev, ok := known[id]; ok && st.ExitCode == nil {
					// Keep the queue's view; take only what accounting adds.
					if prev.Started.IsZero() {
						prev.Started = st.Started
					}
					if prev.Ended.IsZero() {
						prev.Ended = st.Ended
					}
					if prev.AllocCPUs == 0 {
						prev.Elapsed, prev.AllocCPUs = st.Elapsed, st.AllocCPUs
					}
					known[id] = prev
					continue
				}
				known[id] = st
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("poll finished jobs: %w", err)
		}
	}

	// 3. Exit-code files written by the job script (and the cancel marker).
	ask, askDirs = needDetail(valid, dirs, known, false)
	if len(ask) > 0 {
		if err := runChunks(ctx, tr, ask, askDirs, ExitFilesCommand, func(r RunResult, part []plugins.JobRef) error {
			files, err := ParseExitFiles(r.Stdout, len(part))
			if err != nil {
				return err
			}
			for i, f := range files {
				id := part[i].JobID
				prev, seen := known[id]
				switch {
				case seen && prev.ExitCode == nil && f.ExitCode != nil:
					prev.ExitCode = f.ExitCode
					if prev.Ended.IsZero() {
						prev.Ended = f.Ended
					}
					known[id] = prev
				case !seen && f.Found():
					known[id] = f.Status(id)
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("poll exit-code files: %w", err)
		}
	}

	// 4. Nothing anywhere: lost, then unknown after the grace period.
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	asked := make(map[string]bool, len(valid))
	for _, j := range valid {
		asked[j.JobID+"\x00"+j.Folder] = true
	}
	for k, first := range s.missing {
		// A job still polled turns unknown after one grace period and leaves the
		// map; an older entry not asked about now is one the core gave up on.
		if !asked[k] && now.Sub(first) > 2*s.lostGrace {
			delete(s.missing, k)
		}
	}
	for k, j := range valid {
		i := validIdx[k]
		key := j.JobID + "\x00" + j.Folder
		if st, ok := known[j.JobID]; ok {
			delete(s.missing, key)
			st.JobID = j.JobID
			out[i] = st
			continue
		}
		first, ok := s.missing[key]
		if !ok {
			first = now
			s.missing[key] = now
			s.log.Warn("job missing from queue, accounting and folder", "calc", j.CalcID, "job", j.JobID)
		}
		if now.Sub(first) < s.lostGrace {
			out[i] = plugins.JobStatus{JobID: j.JobID, State: plugins.StateLost,
				Reason: "not in the queue, no accounting record, no exit-code file (yet)"}
			continue
		}
		delete(s.missing, key)
		out[i] = plugins.JobStatus{JobID: j.JobID, State: plugins.StateUnknown,
			Reason: fmt.Sprintf("finished, outcome unknown: no trace of the job for %s", now.Sub(first).Round(time.Second))}
		s.log.Warn("job finished with unknown outcome", "calc", j.CalcID, "job", j.JobID)
	}
	return out, nil
}

// needDetail lists the jobs the known statuses do not settle: absent, or final
// without an exit code (or, with usage, without the accounting of its usage).
func needDetail(jobs []plugins.JobRef, dirs []string, known map[string]plugins.JobStatus, usage bool) ([]plugins.JobRef, []string) {
	var ask []plugins.JobRef
	var askDirs []string
	for i, j := range jobs {
		st, ok := known[j.JobID]
		if !ok || (st.State.Final() && (st.ExitCode == nil || (usage && st.AllocCPUs == 0))) {
			ask = append(ask, j)
			askDirs = append(askDirs, dirs[i])
		}
	}
	return ask, askDirs
}

// runChunks runs build(jobs) and hands the result to parse. A command longer
// than maxCommandLen is rebuilt for halves of the list, recursively, so that
// thousands of jobs still poll in as few commands as the kernel allows. An
// empty command means the dialect has nothing to ask.
func runChunks(ctx context.Context, tr Transport, jobs []plugins.JobRef, dirs []string,
	build func([]plugins.JobRef, []string) string, parse func(RunResult, []plugins.JobRef) error) error {
	cmd := build(jobs, dirs)
	if cmd == "" {
		return nil
	}
	if len(cmd) > maxCommandLen && len(jobs) > 1 {
		h := len(jobs) / 2
		if err := runChunks(ctx, tr, jobs[:h], dirs[:h], build, parse); err != nil {
			return err
		}
		return runChunks(ctx, tr, jobs[h:], dirs[h:], build, parse)
	}
	r, err := tr.Run(ctx, cmd)
	if err != nil {
		return err
	}
	return parse(r, jobs)
}

// ExitFile is what a folder's exit-code file and cancel marker say.
type ExitFile struct {
	ExitCode  *int
	Ended     time.Time
	Cancelled bool
}

// Found reports whether the folder held any evidence.
func (f ExitFile) Found() bool { return f.ExitCode != nil || f.Cancelled }

// Status turns the evidence into a final state: an exit code decides, except that a
// job hpcbot cancelled and that did not exit 0 is cancelled.
func (f ExitFile) Status(jobID string) plugins.JobStatus {
	st := plugins.JobStatus{JobID: jobID, ExitCode: f.ExitCode, Ended: f.Ended}
	switch {
	case f.ExitCode != nil && *f.ExitCode == 0:
		st.State, st.Raw = plugins.StateSucceeded, "exit 0"
	case f.Cancelled:
		st.State, st.Raw, st.Reason = plugins.StateCancelled, "cancelled", "cancelled by hpcbot"
	default:
		st.State, st.Raw = plugins.StateFailed, "exit "+strconv.Itoa(*f.ExitCode)
	}
	return st
}

const exitMark = "@@hpcbot-exit "

// ExitFilesCommand prints, for each folder in order, a marker line, the
// exit-code file and whether the cancel marker exists, in one command.
func ExitFilesCommand(_ []plugins.JobRef, dirs []string) string {
	var b strings.Builder
	b.WriteString("f() { printf '\\n" + exitMark + "%s\\n' \"$1\"; cat \"$2/" + ExitCodeFile + "\" 2>/dev/null; " +
		"if [ -e \"$2/" + CancelledFile + "\" ]; then printf '\\n@cancelled\\n'; fi; }\n")
	for i, d := range dirs {
		fmt.Fprintf(&b, "f %d %s\n", i, shellquote.Quote(d))
	}
	return b.String()
}

// ParseExitFiles reads ExitFilesCommand's output for n folders. The exit-code
// file holds "CODE [END_UNIX_TIME]"; anything else in it is ignored (a partly
// written file is never renamed into place, so garbage means someone else wrote it).
func ParseExitFiles(out []byte, n int) ([]ExitFile, error) {
	files := make([]ExitFile, n)
	cur := -1
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, strings.TrimSpace(exitMark)); ok {
			i, err := strconv.Atoi(strings.TrimSpace(rest))
			if err != nil || i < 0 || i >= n {
				return nil, fmt.Errorf("exit-code files: bad marker %q", line)
			}
			cur = i
			seen++
			continue
		}
		if cur < 0 || line == "" {
			continue
		}
		if line == "@cancelled" {
			files[cur].Cancelled = true
			continue
		}
		if files[cur].ExitCode != nil {
			continue
		}
		code, end, ok := ParseExitCodeLine(line)
		if ok {
			files[cur].ExitCode = &code
			files[cur].Ended = end
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("exit-code files: %w", err)
	}
	if seen != n {
		return nil, fmt.Errorf("exit-code files: %d of %d folders answered", seen, n)
	}
	return files, nil
}

// ParseExitCodeLine reads "CODE [END_UNIX_TIME]" as job scripts write it.
func ParseExitCodeLine(line string) (code int, ended time.Time, ok bool) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return 0, time.Time{}, false
	}
	code, err := strconv.Atoi(fields[0])
	if err != nil || code < 0 || code > 255 {
		return 0, time.Time{}, false
	}
	if len(fields) > 1 {
		if sec, err := strconv.ParseInt(fields[1], 10, 64); err == nil && sec > 0 {
			ended = time.Unix(sec, 0)
		}
	}
	return code, ended, true
}

// ExitCodeScript is the shell line a job script ends with: it records the
// program's exit code (in $rc) and the time in ExitCodeFile atomically.
func ExitCodeScript() string {
	return "printf '%s %s\\n' \"$rc\" \"$(date +%s)\" >" + ExitCodeFile + ".tmp && mv -f " +
		ExitCodeFile + ".tmp " + ExitCodeFile
}
