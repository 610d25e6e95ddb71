package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// scripted is a Dialect whose commands print canned answers, so the generic
// code's merging of queue, accounting and exit-code files is tested exactly.
type scripted struct {
	poll, finished string // stdout of the queue and accounting commands ("" = no command)
	submitOut      string // what the launcher prints
	submitRC       int
	nothing        bool // NothingSubmitted answers this
	launches       string
	script         []byte // BatchScript's answer; nil: a script running argv
}

func (d *scripted) Name() string           { return "scripted" }
func (d *scripted) VersionCommand() string { return "echo scripted 1" }
func (d *scripted) ParseVersion(r RunResult) (string, error) {
	return strings.TrimSpace(string(r.Stdout)), nil
}
func (d *scripted) BatchScript(req plugins.SubmitRequest, dir string) ([]byte, error) {
	if d.script != nil {
		return d.script, nil
	}
	return []byte("#!/bin/sh\n" + shellquote.Join(req.Argv) + "\n"), nil
}
func (d *scripted) SubmitCommand(req plugins.SubmitRequest, dir, script string) string {
	return "cd " + shellquote.Quote(dir) + " && echo launch >>" + shellquote.Quote(d.launches) +
		" && printf '%s' " + shellquote.Quote(d.submitOut) + " && exit " + fmt.Sprint(d.submitRC)
}
func (d *scripted) ParseSubmit(out []byte, re string) (string, error) {
	id, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "id=")
	if !ok {
		return "", errors.New("no id")
	}
	return id, nil
}
func (d *scripted) PollCommand(jobs []plugins.JobRef, dirs []string) string {
	if d.poll == "" {
		return ""
	}
	return "printf '%s' " + shellquote.Quote(d.poll)
}

// parseLines reads "id state [exit]" lines.
func parseLines(out []byte) map[string]plugins.JobStatus {
	m := map[string]plugins.JobStatus{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		st := plugins.JobStatus{JobID: f[0], State: plugins.State(f[1]), Raw: f[1]}
		if len(f) > 2 {
			var c int
			fmt.Sscan(f[2], &c)
			st.ExitCode = &c
		}
		m[f[0]] = st
	}
	return m
}

func (d *scripted) ParsePoll(r RunResult, jobs []plugins.JobRef) (map[string]plugins.JobStatus, error) {
	return parseLines(r.Stdout), nil
}
func (d *scripted) FinishedCommand(jobs []plugins.JobRef) string {
	if d.finished == "" {
		return ""
	}
	return "printf '%s' " + shellquote.Quote(d.finished)
}
func (d *scripted) ParseFinished(r RunResult, jobs []plugins.JobRef) (map[string]plugins.JobStatus, error) {
	return parseLines(r.Stdout), nil
}
func (d *scripted) CancelCommand(job plugins.JobRef, dir string) string { return "true" }
func (d *scripted) CancelDone(r RunResult) bool                         { return r.ExitCode == 0 }
func (d *scripted) StreamFiles(req plugins.TailRequest) (string, string) {
	return req.JobName + ".out", req.JobName + ".err"
}
func (d *scripted) NothingSubmitted(out []byte, rc int) bool { return d.nothing }

// counting counts the commands a Transport runs and the files it writes.
type counting struct {
	LocalTransport
	runs, writes atomic.Int64
	lastOut      atomic.Int64 // bytes the last command printed
}

func (c *counting) Run(ctx context.Context, cmd string) (RunResult, error) {
	c.runs.Add(1)
	r, err := c.LocalTransport.Run(ctx, cmd)
	c.lastOut.Store(int64(len(r.Stdout)))
	return r, err
}

func (c *counting) WriteFile(ctx context.Context, p string, data []byte, perm fs.FileMode) error {
	c.writes.Add(1)
	return c.LocalTransport.WriteFile(ctx, p, data, perm)
}

type clock struct{ now time.Time }

func newScheduler(t *testing.T, d Dialect) (*Scheduler, *counting, string, *clock) {
	t.Helper()
	upload := filepath.Join(t.TempDir(), "up")
	tr := &counting{}
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	s := New(d, func(plugins.Cluster) (Transport, error) { return tr, nil },
		WithClock(func() time.Time { return clk.now }), WithSubmitWait(0), WithLogger(slog.New(slog.DiscardHandler)))
	if err := s.Configure(ctxT(t), plugins.Cluster{Label: "t", UploadPath: upload}); err != nil {
		t.Fatal(err)
	}
	return s, tr, upload, clk
}

func mkdirs(t *testing.T, upload string, folders ...string) {
	t.Helper()
	for _, f := range folders {
		if err := os.MkdirAll(filepath.Join(upload, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPollMergesSources(t *testing.T) {
	d := &scripted{
		// The queue: a running job, a job finished without an exit code, one unknown to it.
		poll: "1 running\n2 failed\n",
		// Accounting: knows 3 (failed, exit 2) and 2 (no exit code), not 4, 5, 6.
		finished: "3 failed 2\n2 failed\n",
	}
	s, tr, upload, clk := newScheduler(t, d)
	mkdirs(t, upload, "f1", "f2", "f3", "f4", "f5", "f6")
	write := func(folder, name, body string) {
		if err := os.WriteFile(filepath.Join(upload, folder, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("f2", ExitCodeFile, "7 1800000000\n") // completes 2's exit code
	write("f4", ExitCodeFile, "0 1800000000\n") // 4 left every queue but wrote exit 0
	write("f5", CancelledFile, "")              // 5 was cancelled by hpcbot and left no exit code
	write("f6", ExitCodeFile, "garbage\n")      // 6: nothing usable
	jobs := []plugins.JobRef{{JobID: "1", Folder: "f1"}, {JobID: "2", Folder: "f2"}, {JobID: "3", Folder: "f3"},
		{JobID: "4", Folder: "f4"}, {JobID: "5", Folder: "f5"}, {JobID: "6", Folder: "f6"}, {JobID: "7", Folder: "../x"}}
	got, err := s.Poll(ctxT(t), jobs)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		state plugins.State
		exit  any
	}{
		{plugins.StateRunning, nil},
		{plugins.StateFailed, 7},
		{plugins.StateFailed, 2},
		{plugins.StateSucceeded, 0},
		{plugins.StateCancelled, nil},
		{plugins.StateLost, nil},
		{plugins.StateLost, nil}, // an invalid reference never breaks the others
	}
	for i, w := range want {
		var exit any
		if got[i].ExitCode != nil {
			exit = *got[i].ExitCode
		}
		if got[i].State != w.state || exit != w.exit || got[i].JobID != jobs[i].JobID {
			t.Errorf("job %s: %+v (exit %v), want %s exit %v", jobs[i].JobID, got[i], exit, w.state, w.exit)
		}
	}
	if n := tr.runs.Load(); n != 3 {
		t.Errorf("%d commands for one poll, want 3 (queue, accounting, files)", n)
	}
	// The grace period runs from the first poll that found no trace.
	clk.now = clk.now.Add(DefaultLostGrace - time.Second)
	got, _ = s.Poll(ctxT(t), jobs[5:6])
	if got[0].State != plugins.StateLost {
		t.Errorf("within grace: %+v", got[0])
	}
	clk.now = clk.now.Add(time.Second)
	got, _ = s.Poll(ctxT(t), jobs[5:6])
	if got[0].State != plugins.StateUnknown || got[0].ExitCode != nil {
		t.Errorf("after grace: %+v", got[0])
	}
	// A job seen again is no longer counted as missing.
	d.poll = "6 running\n"
	got, _ = s.Poll(ctxT(t), jobs[5:6])
	if got[0].State != plugins.StateRunning {
		t.Errorf("seen again: %+v", got[0])
	}
}

// One command per poll while the queue knows every job and none ended; a job
// that ended adds one accounting query (its usage, read once) for all of them.
func TestPollOneCommandWhenQueueKnowsAll(t *testing.T) {
	d := &scripted{poll: "1 running\n2 pending\n", finished: "x"}
	s, tr, upload, _ := newScheduler(t, d)
	mkdirs(t, upload, "a", "b", "c")
	jobs := []plugins.JobRef{{JobID: "1", Folder: "a"}, {JobID: "2", Folder: "b"}}
	if _, err := s.Poll(ctxT(t), jobs); err != nil {
		t.Fatal(err)
	}
	if n := tr.runs.Load(); n != 1 {
		t.Errorf("%d commands, want 1", n)
	}
	d.poll = "1 running\n2 pending\n3 succeeded 0\n4 failed 1\n"
	if _, err := s.Poll(ctxT(t), append(jobs, plugins.JobRef{JobID: "3", Folder: "c"}, plugins.JobRef{JobID: "4", Folder: "c"})); err != nil {
		t.Fatal(err)
	}
	if n := tr.runs.Load(); n != 3 {
		t.Errorf("%d commands after two jobs ended, want 1 + 2", n)
	}
}

func TestRunChunksSplitsLongCommands(t *testing.T) {
	var jobs []plugins.JobRef
	var dirs []string
	for i := range 800 {
		jobs = append(jobs, plugins.JobRef{JobID: fmt.Sprint(i)})
		dirs = append(dirs, "/nonexistent/"+strings.Repeat("d", 200))
	}
	tr := &counting{}
	seen := 0
	err := runChunks(ctxT(t), tr, jobs, dirs, ExitFilesCommand, func(r RunResult, part []plugins.JobRef) error {
		files, err := ParseExitFiles(r.Stdout, len(part))
		seen += len(files)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(jobs) || tr.runs.Load() < 2 {
		t.Errorf("answered %d of %d in %d commands", seen, len(jobs), tr.runs.Load())
	}
	if len(ExitFilesCommand(jobs, dirs)) <= maxCommandLen {
		t.Fatal("test does not exercise the split")
	}
}

func TestParseExitFiles(t *testing.T) {
	out := "\n@@hpcbot-exit 0\n3 1800000000\n\n@@hpcbot-exit 1\n\n@cancelled\n\n@@hpcbot-exit 2\n0\n\n@cancelled\n\n@@hpcbot-exit 3\n-1\n300\nx y\n"
	files, err := ParseExitFiles([]byte(out), 4)
	if err != nil {
		t.Fatal(err)
	}
	if c := files[0].ExitCode; c == nil || *c != 3 || files[0].Ended.Unix() != 1_800_000_000 || files[0].Cancelled {
		t.Errorf("0: %+v", files[0])
	}
	if files[1].ExitCode != nil || !files[1].Cancelled || files[1].Status("x").State != plugins.StateCancelled {
		t.Errorf("1: %+v", files[1])
	}
	if st := files[2].Status("x"); st.State != plugins.StateSucceeded {
		t.Errorf("2: cancelled but exited 0 must be succeeded: %+v", st)
	}
	if files[3].Found() {
		t.Errorf("3: out-of-range codes accepted: %+v", files[3])
	}
	for _, bad := range []string{"@@hpcbot-exit 0\n", "@@hpcbot-exit 9\n@@hpcbot-exit 1\n", "@@hpcbot-exit x\n@@hpcbot-exit 1\n"} {
		if _, err := ParseExitFiles([]byte(bad), 2); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestExitFilesCommandOnShell(t *testing.T) {
	dir := t.TempDir()
	var dirs []string
	for i, body := range []string{"5 1800000000\n", "", "0\n"} {
		d := filepath.Join(dir, fmt.Sprintf("it's %d", i))
		os.MkdirAll(d, 0o755)
		if body != "" {
			os.WriteFile(filepath.Join(d, ExitCodeFile), []byte(body), 0o644)
		}
		dirs = append(dirs, d)
	}
	os.WriteFile(filepath.Join(dirs[1], CancelledFile), nil, 0o644)
	dirs = append(dirs, filepath.Join(dir, "missing"))
	r, err := (&LocalTransport{}).Run(ctxT(t), ExitFilesCommand(nil, dirs))
	if err != nil {
		t.Fatal(err)
	}
	files, err := ParseExitFiles(r.Stdout, len(dirs))
	if err != nil {
		t.Fatal(err)
	}
	if *files[0].ExitCode != 5 || !files[1].Cancelled || *files[2].ExitCode != 0 || files[3].Found() {
		t.Errorf("%+v", files)
	}
}

func TestSubmitWrapperRunsOnce(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(t.TempDir(), "count")
	launch := "echo x >>" + shellquote.Quote(count) + "; sleep 0.2; echo id=7; exit 0"
	var wg sync.WaitGroup
	outs := make([]submitOutcome, 12)
	errs := make([]error, 12)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := (&LocalTransport{}).Run(ctxT(t), SubmitWrapper(dir, nil, launch, 5))
			if err != nil {
				errs[i] = err
				return
			}
			outs[i], errs[i] = parseSubmitOutput(r.Stdout)
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("%d: %v", i, errs[i])
		}
		if outs[i].fresh {
			fresh++
		}
		if outs[i].rc != 0 || strings.TrimSpace(string(outs[i].out)) != "id=7" {
			t.Errorf("%d: %+v", i, outs[i])
		}
	}
	data, _ := os.ReadFile(count)
	if fresh != 1 || string(data) != "x\n" {
		t.Errorf("%d fresh submissions, launcher ran %d times", fresh, strings.Count(string(data), "x"))
	}
}

func TestParseSubmitOutput(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want submitOutcome
		err  bool
	}{
		{in: "hpcbot-submit:fresh\nhpcbot-submit:rc 0\nid=5\n", want: submitOutcome{fresh: true, out: []byte("id=5\n")}},
		{in: "hpcbot-submit:existing\nhpcbot-submit:rc 1\nboom", want: submitOutcome{rc: 1, out: []byte("boom")}},
		{in: "hpcbot-submit:existing\nhpcbot-submit:interrupted\n", want: submitOutcome{interrupted: true}},
		{in: "hpcbot-submit:existing\nhpcbot-submit:adopted 42\n", want: submitOutcome{adopted: "42"}},
		{in: "hpcbot-submit:nodir\n", want: submitOutcome{noDir: true}},
		{in: "", err: true},
		{in: "motd line\nhpcbot-submit:fresh\n", err: true},
		{in: "hpcbot-submit:fresh\n", err: true},
		{in: "hpcbot-submit:fresh\nhpcbot-submit:rc x\n", err: true},
		{in: "hpcbot-submit:existing\nhpcbot-submit:adopted \n", err: true},
	} {
		got, err := parseSubmitOutput([]byte(tc.in))
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || got.fresh != tc.want.fresh || got.noDir != tc.want.noDir || got.interrupted != tc.want.interrupted ||
			got.adopted != tc.want.adopted || got.rc != tc.want.rc || string(got.out) != string(tc.want.out) {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestSubmitOutcomes(t *testing.T) {
	launches := filepath.Join(t.TempDir(), "launches")
	d := &scripted{submitOut: "id=9", launches: launches}
	s, _, upload, _ := newScheduler(t, d)
	mkdirs(t, upload, "a", "b", "c")
	req := func(folder, launch string) plugins.SubmitRequest {
		return plugins.SubmitRequest{CalcID: 1, Folder: folder, Argv: []string{"prog", "x y"}, Launch: launch}
	}
	res, err := s.Submit(ctxT(t), req("a", plugins.LaunchBatch))
	if err != nil || res.JobID != "9" || res.Existing {
		t.Fatalf("batch: %+v, %v", res, err)
	}
	if script, err := os.ReadFile(filepath.Join(upload, "a", BatchScriptName)); err != nil || !strings.Contains(string(script), "prog 'x y'") {
		t.Errorf("batch script: %q, %v", script, err)
	}
	if res, err := s.Submit(ctxT(t), req("a", plugins.LaunchBatch)); err != nil || res.JobID != "9" || !res.Existing {
		t.Errorf("repeat: %+v, %v", res, err)
	}

	// A launcher failure that certainly started nothing is transient, and the next call launches again.
	d.submitRC, d.submitOut, d.nothing = 1, "cannot connect", true
	if _, err := s.Submit(ctxT(t), req("b", plugins.LaunchWrapper)); !plugins.IsTransient(err) {
		t.Fatalf("nothing submitted: %v, want transient", err)
	}
	d.submitRC, d.submitOut, d.nothing = 0, "id=10", false
	if res, err := s.Submit(ctxT(t), req("b", plugins.LaunchWrapper)); err != nil || res.JobID != "10" || res.Existing {
		t.Fatalf("after a transient launcher failure: %+v, %v", res, err)
	}
	// Any other failure is permanent, and stays so on a repeat (no second launch).
	d.submitRC, d.submitOut = 3, "rejected"
	for range 2 {
		if _, err := s.Submit(ctxT(t), req("c", plugins.LaunchWrapper)); plugins.KindOf(err) != plugins.KindPermanent || !strings.Contains(err.Error(), "rejected") {
			t.Fatalf("rejected: %v, want permanent", err)
		}
	}
	data, _ := os.ReadFile(launches)
	if n := strings.Count(string(data), "launch"); n != 4 {
		t.Errorf("%d launches, want 4 (a, b twice, c once)", n)
	}
	for _, bad := range []plugins.SubmitRequest{
		{Folder: "a", Argv: nil, Launch: plugins.LaunchBatch},
		{Folder: "a", Argv: []string{"x"}, Launch: "nohup"},
	} {
		if _, err := s.Submit(ctxT(t), bad); plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("%+v: %v, want permanent", bad, err)
		}
	}
}

// oddScript is a batch script made of every byte but NUL, the quoting's own
// escape (quote, backslash, quote, quote) and a quote at either end, a
// here-document delimiter, CRLF, and no newline at the end: what any quoting
// or delimiter could mangle.
func oddScript() []byte {
	b := []byte("'#!/bin/sh\n'\\''\nEOF\n'EOF'\r\n$(echo x) `id` \\n %s %b \"\n")
	for c := 1; c < 256; c++ {
		b = append(b, byte(c))
	}
	return append(b, "\nend'"...)
}

// A batch submission is one remote command: the script travels inside it, byte
// for byte, and is written (0755) before the launcher runs; a repeat launches
// nothing and leaves the script alone.
func TestSubmitIsOneCommand(t *testing.T) {
	launches := filepath.Join(t.TempDir(), "launches")
	first := oddScript()
	d := &scripted{submitOut: "id=9", launches: launches, script: first}
	s, tr, upload, _ := newScheduler(t, d)
	mkdirs(t, upload, "a")
	req := plugins.SubmitRequest{CalcID: 1, Folder: "a", Argv: []string{"prog"}, Launch: plugins.LaunchBatch}
	for i, existing := range []bool{false, true} {
		tr.runs.Store(0)
		res, err := s.Submit(ctxT(t), req)
		if err != nil || res.JobID != "9" || res.Existing != existing {
			t.Fatalf("submit %d: %+v, %v", i, res, err)
		}
		if runs, writes := tr.runs.Load(), tr.writes.Load(); runs != 1 || writes != 0 {
			t.Errorf("submit %d: %d commands and %d file writes, want one command and no write", i, runs, writes)
		}
		checkScript(t, filepath.Join(upload, "a"), first)
		d.script = []byte("#!/bin/sh\nthe repeat's script\n")
	}
	if data, _ := os.ReadFile(launches); string(data) != "launch\n" {
		t.Errorf("launches: %q, want one", data)
	}

	// Too long for one command, or holding a NUL byte: the script is written on
	// its own first, as it was before, and arrives the same.
	for _, script := range [][]byte{bytes.Repeat([]byte("# x'y\n"), maxCommandLen/6+1), []byte("#!/bin/sh\n\x00\n")} {
		d.script = script
		folder := fmt.Sprintf("big%d", len(script))
		mkdirs(t, upload, folder)
		tr.runs.Store(0)
		tr.writes.Store(0)
		if res, err := s.Submit(ctxT(t), plugins.SubmitRequest{CalcID: 2, Folder: folder, Argv: []string{"prog"}, Launch: plugins.LaunchBatch}); err != nil || res.JobID != "9" {
			t.Fatalf("%d-byte script: %+v, %v", len(script), res, err)
		}
		if runs, writes := tr.runs.Load(), tr.writes.Load(); runs != 1 || writes != 1 {
			t.Errorf("%d-byte script: %d commands and %d file writes, want one of each", len(script), runs, writes)
		}
		checkScript(t, filepath.Join(upload, folder), script)
	}
}

// FuzzInlineScript: whatever bytes a batch script holds (NUL aside, which goes
// by SFTP), the submit command writes exactly them before it launches.
func FuzzInlineScript(f *testing.F) {
	for _, seed := range []string{"#!/bin/sh\necho hi\n", string(oddScript()), "'", "", "\\", "EOF\n", "\xff\xfe'\r\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		dir := t.TempDir()
		cmd, ok := inlineScript(dir, script, "echo id=1", 0)
		if !ok {
			if bytes.IndexByte(script, 0) < 0 && len(script) <= maxCommandLen/2 {
				t.Fatalf("a %d-byte script without NUL was not sent inline", len(script))
			}
			return
		}
		r, err := (&LocalTransport{}).Run(ctxT(t), cmd)
		if err != nil {
			t.Fatal(err)
		}
		if o, err := parseSubmitOutput(r.Stdout); err != nil || !o.fresh || o.rc != 0 {
			t.Fatalf("%+v, %v (stderr %q)", o, err, r.Stderr)
		}
		if got, err := os.ReadFile(filepath.Join(dir, BatchScriptName)); err != nil || !bytes.Equal(got, script) {
			t.Errorf("wrote %q, %v; want %q", got, err, script)
		}
	})
}

// checkScript checks the batch script in dir: exactly want, mode 0755, no temp file left.
func checkScript(t *testing.T, dir string, want []byte) {
	t.Helper()
	p := filepath.Join(dir, BatchScriptName)
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("batch script: %v; %d bytes, want %d, equal %v", err, len(got), len(want), bytes.Equal(got, want))
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("batch script mode: %v, %v", st, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "."+BatchScriptName+".tmp-*")); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

// A script that cannot be written launches nothing and takes no lock, so a
// later call (the folder repaired) submits normally; the shell's message is in the error.
func TestSubmitScriptNotWritten(t *testing.T) {
	launches := filepath.Join(t.TempDir(), "launches")
	d := &scripted{submitOut: "id=9", launches: launches, script: []byte("#!/bin/sh\ntrue\n")}
	s, tr, upload, _ := newScheduler(t, d)
	mkdirs(t, upload, "a")
	// A chmod that fails as on a read-only file system (tests may run as root,
	// whom file modes do not stop).
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "chmod"), []byte("#!/bin/sh\necho 'chmod: Read-only file system' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr.Env = append(LoginEnv(), "PATH="+bin+":"+os.Getenv("PATH"))
	req := plugins.SubmitRequest{CalcID: 1, Folder: "a", Argv: []string{"prog"}, Launch: plugins.LaunchBatch}
	_, err := s.Submit(ctxT(t), req)
	if plugins.KindOf(err) != plugins.KindPermanent || !strings.Contains(err.Error(), "Read-only file system") {
		t.Fatalf("unwritable script: %v, want a permanent error with the shell's message", err)
	}
	if _, err := os.Stat(filepath.Join(upload, "a", SubmitLockDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock taken: %v", err)
	}
	if _, err := os.Stat(launches); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("launched: %v", err)
	}
	tr.Env = nil
	if res, err := s.Submit(ctxT(t), req); err != nil || res.JobID != "9" || res.Existing {
		t.Fatalf("after the repair: %+v, %v", res, err)
	}
	checkScript(t, filepath.Join(upload, "a"), d.script)
}

func TestConfigure(t *testing.T) {
	for _, up := range []string{"", "~/calcs", "a\nb"} {
		s := New(&scripted{}, NewLocalTransport)
		if err := s.Configure(ctxT(t), plugins.Cluster{UploadPath: up}); plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("upload_path %q: %v", up, err)
		}
	}
	s := New(&scripted{}, NewLocalTransport)
	if _, err := s.Check(ctxT(t)); err == nil {
		t.Error("unconfigured scheduler answered")
	}
	if err := s.Configure(ctxT(t), plugins.Cluster{UploadPath: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Check(ctxT(t))
	if err != nil || res.Scheduler != "scripted 1" || res.Host == "" {
		t.Errorf("check: %+v, %v", res, err)
	}
}

func TestSelect(t *testing.T) {
	files := []RemoteFile{
		{Path: "z.out", Size: 1}, {Path: "a.OUT", Size: 2}, {Path: "big.log", Size: 100}, {Path: "x.tmp", Size: 1},
		{Path: ".hpcbot-exitcode", Size: 2}, {Path: ".hpcbot-submit/out", Size: 3}, {Path: BatchScriptName, Size: 5},
		{Path: "sub/.hpcbot-x", Size: 1}, {Path: "result.xyz", Size: 4}, {Path: "sub/result.xyz", Size: 4},
		{Path: "noext", Size: 1}, {Path: ".hidden.out", Size: 1},
	}
	take, skipped := Select(files, plugins.FetchRequest{Extensions: []string{".out", ".log"}, Files: []string{"result.xyz"}, MaxSize: 50, MaxTotal: 10})
	var got []string
	for _, f := range take {
		got = append(got, f.Path)
	}
	// Path order: .hidden.out(1) a.OUT(2) result.xyz(4) sub/result.xyz(4 → 11 > 10) z.out(1)
	if want := []string{".hidden.out", "a.OUT", "result.xyz", "z.out"}; !slices.Equal(got, want) {
		t.Errorf("take %v, want %v", got, want)
	}
	wantSkipped := []plugins.Skipped{
		{Path: "big.log", Size: 100, Code: plugins.SkipTooLarge},
		{Path: "noext", Size: 1, Code: plugins.SkipNotWhitelisted},
		{Path: "sub/result.xyz", Size: 4, Code: plugins.SkipLimitReached},
		{Path: "x.tmp", Size: 1, Code: plugins.SkipTemporary},
	}
	for i := range skipped {
		if skipped[i].Reason == "" {
			t.Errorf("%s: no detail for the log", skipped[i].Path)
		}
		skipped[i].Reason = ""
	}
	if !slices.Equal(skipped, wantSkipped) {
		t.Errorf("skipped %+v\nwant %+v", skipped, wantSkipped)
	}
	all, _ := Select(files, plugins.FetchRequest{})
	if len(all) != 7 {
		t.Errorf("no whitelist: %d files, want every file but hpcbot's own and *.tmp", len(all))
	}
}

func TestCheckFolder(t *testing.T) {
	for _, ok := range []string{"1732640000_7_h2o", "a", "A.b-c_d", "x..y"} {
		if err := CheckFolder(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", ".x", "-x", "a/b", "a b", "a\x00", "ä", strings.Repeat("a", 201), "a\\b", "$(x)"} {
		if err := CheckFolder(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzCheckFolder(f *testing.F) {
	for _, s := range []string{"a", "..", "a/b", ".x", "-", "1732640000_7_h2o"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckFolder(s) != nil {
			return
		}
		if !filepath.IsLocal(s) || strings.ContainsAny(s, "/\\") || s == "." || s == ".." || shellquote.Quote(s) != s {
			t.Fatalf("%q accepted", s)
		}
	})
}

func FuzzParseExitFiles(f *testing.F) {
	f.Add([]byte("\n@@hpcbot-exit 0\n3 1800000000\n\n@cancelled\n"), 1)
	f.Fuzz(func(t *testing.T, out []byte, n int) {
		if n < 0 || n > 100 {
			return
		}
		files, err := ParseExitFiles(out, n)
		if err != nil {
			return
		}
		for _, fl := range files {
			if fl.ExitCode != nil && (*fl.ExitCode < 0 || *fl.ExitCode > 255) {
				t.Fatalf("exit code %d", *fl.ExitCode)
			}
		}
	})
}

func TestLocalTransport(t *testing.T) {
	tr := &LocalTransport{}
	t.Setenv("HPCBOT_TEST_SECRET", "s3cret")
	t.Setenv("LANG", "C.UTF-8")
	if r, err := tr.Run(ctxT(t), `echo "${HPCBOT_TEST_SECRET-unset} $LANG"`); err != nil || string(r.Stdout) != "unset C.UTF-8\n" {
		t.Errorf("environment: %q, %v; want the bot's secrets kept out and LANG passed", r.Stdout, err)
	}
	r, err := tr.Run(ctxT(t), "echo out; echo err >&2; exit 4")
	if err != nil || string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.ExitCode != 4 {
		t.Errorf("run: %+v, %v", r, err)
	}
	// A cancelled context kills the shell and its children and is transient.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := tr.Run(ctx, "sleep 60 & sleep 60; wait"); !plugins.IsTransient(err) {
		t.Errorf("cancelled run: %v", err)
	}
	// A child that detaches from our pipes does not hold Run.
	if r, err := tr.Run(ctxT(t), "setsid sleep 1 >/dev/null 2>&1 </dev/null & echo started"); err != nil || string(r.Stdout) != "started\n" {
		t.Errorf("detached child: %+v, %v", r, err)
	}

	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o755)
	os.WriteFile(filepath.Join(src, "a.inp"), []byte("A"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "deep", "b.x"), []byte("BB"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	remote := filepath.Join(t.TempDir(), "up", "calc")
	if err := tr.PutDir(ctxT(t), src, remote); err != nil {
		t.Fatal(err)
	}
	if err := tr.PutDir(ctxT(t), src, remote); err != nil {
		t.Fatalf("second PutDir: %v", err)
	}
	if err := tr.WriteFile(ctxT(t), filepath.Join(remote, "new", "s.sh"), []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := tr.List(ctxT(t), remote)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, fmt.Sprintf("%s:%d:%v", f.Path, f.Size, f.Mode.Perm()))
	}
	if want := []string{"a.inp:1:-rw-r--r--", "new/s.sh:2:-rwxr-xr-x", "sub/deep/b.x:2:-rw-------"}; !slices.Equal(paths, want) {
		t.Errorf("list %v, want %v", paths, want)
	}
	local := filepath.Join(t.TempDir(), "l", "b.x")
	if _, err := tr.Get(ctxT(t), remote, "sub/deep/b.x", local, NoLimit); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(local); string(data) != "BB" {
		t.Errorf("get: %q", data)
	}
	for name, err := range map[string]error{
		"get":  func() error { _, err := tr.Get(ctxT(t), remote, "nope", local, NoLimit); return err }(),
		"list": func() error { _, err := tr.List(ctxT(t), filepath.Join(remote, "nope")); return err }(),
		"put":  tr.PutDir(ctxT(t), filepath.Join(src, "nope"), remote),
	} {
		if plugins.KindOf(err) != plugins.KindNotFound {
			t.Errorf("%s of a missing path: %v, want not found", name, err)
		}
	}
	if err := tr.RemoveAll(ctxT(t), remote); err != nil {
		t.Fatal(err)
	}
	if err := tr.RemoveAll(ctxT(t), remote); err != nil {
		t.Errorf("remove of a missing folder: %v", err)
	}
}
