package detached_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/detached"
)

// bed is one local cluster in a temp folder, served by the generic Scheduler
// over LocalTransport with the detached dialect (the `local` plugin).
type bed struct {
	t      *testing.T
	s      *cluster.Scheduler
	upload string
	c      plugins.Cluster
	clock  *fakeClock
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newBed(t *testing.T, maxJobs int) *bed {
	t.Helper()
	b := &bed{t: t, upload: filepath.Join(t.TempDir(), "calcs"), clock: &fakeClock{now: time.Unix(1_800_000_000, 0)}}
	b.c = plugins.Cluster{Label: "loc", Scheduler: "local", UploadPath: b.upload, MaxJobs: maxJobs}
	b.s = b.restart()
	t.Cleanup(func() { b.killAll() })
	return b
}

// newRelativeBed is a bed whose upload_path is relative (to the working
// directory here; to the login directory over SSH).
func newRelativeBed(t *testing.T, maxJobs int) *bed {
	t.Helper()
	t.Chdir(t.TempDir())
	b := &bed{t: t, upload: "calcs", clock: &fakeClock{now: time.Unix(1_800_000_000, 0)}}
	b.c = plugins.Cluster{Label: "loc", Scheduler: "local", UploadPath: b.upload, MaxJobs: maxJobs}
	b.s = b.restart()
	t.Cleanup(func() { b.killAll() })
	return b
}

// restart returns a fresh Scheduler for the same cluster, as after a plugin restart.
func (b *bed) restart() *cluster.Scheduler {
	b.t.Helper()
	s := detached.NewLocal(cluster.WithClock(b.clock.Now), cluster.WithSubmitWait(0),
		cluster.WithLogger(slog.New(slog.DiscardHandler)))
	if err := s.Configure(context.Background(), b.c); err != nil {
		b.t.Fatal(err)
	}
	return s
}

// killAll stops any job a failed test left running.
func (b *bed) killAll() {
	matches, _ := filepath.Glob(filepath.Join(b.upload, "*", detached.PIDFile))
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.Fields(string(data))[0]); err == nil && pid > 1 {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// stage writes files into a local folder and stages it as folder.
func (b *bed) stage(folder string, files map[string]string) {
	b.t.Helper()
	local := filepath.Join(b.t.TempDir(), folder)
	for name, body := range files {
		p := filepath.Join(local, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := b.s.Stage(ctxT(b.t), plugins.StageRequest{CalcID: 1, LocalDir: local, Folder: folder}); err != nil {
		b.t.Fatalf("stage %s: %v", folder, err)
	}
}

func (b *bed) submit(folder string, argv ...string) plugins.JobRef {
	b.t.Helper()
	res, err := b.s.Submit(ctxT(b.t), plugins.SubmitRequest{CalcID: 1, Folder: folder, Argv: argv,
		Launch: plugins.LaunchWrapper, JobName: "hpcbot-1"})
	if err != nil {
		b.t.Fatalf("submit %s: %v", folder, err)
	}
	if res.Existing {
		b.t.Fatalf("submit %s: first submission reported as existing", folder)
	}
	return plugins.JobRef{CalcID: 1, JobID: res.JobID, Folder: folder, Launch: plugins.LaunchWrapper}
}

func (b *bed) poll(jobs ...plugins.JobRef) []plugins.JobStatus {
	b.t.Helper()
	st, err := b.s.Poll(ctxT(b.t), jobs)
	if err != nil {
		b.t.Fatalf("poll: %v", err)
	}
	if len(st) != len(jobs) {
		b.t.Fatalf("poll: %d statuses for %d jobs", len(st), len(jobs))
	}
	return st
}

// waitFor polls until cond holds for the job's status; it fails the test after a
// generous deadline (a hang, not a speed check).
func (b *bed) waitFor(job plugins.JobRef, what string, cond func(plugins.JobStatus) bool) plugins.JobStatus {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := b.poll(job)[0]
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("job %s never %s; last status %+v", job.JobID, what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *bed) waitFinal(job plugins.JobRef) plugins.JobStatus {
	b.t.Helper()
	return b.waitFor(job, "finished", func(s plugins.JobStatus) bool { return s.State.Final() })
}

func (b *bed) path(folder, name string) string { return filepath.Join(b.upload, folder, name) }

func (b *bed) touch(folder, name string) {
	b.t.Helper()
	if err := os.WriteFile(b.path(folder, name), nil, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func TestLocalExitCodes(t *testing.T) {
	b := newBed(t, 0)
	for _, tc := range []struct {
		code  int
		state plugins.State
	}{{0, plugins.StateSucceeded}, {3, plugins.StateFailed}} {
		folder := "exit" + strconv.Itoa(tc.code)
		b.stage(folder, map[string]string{"in.inp": "data\n"})
		job := b.submit(folder, "sh", "-c", "cat in.inp; echo err >&2; exit "+strconv.Itoa(tc.code))
		if job.JobID != folder {
			t.Errorf("job id %q, want the folder %q", job.JobID, folder)
		}
		st := b.waitFinal(job)
		if st.State != tc.state || st.ExitCode == nil || *st.ExitCode != tc.code {
			t.Errorf("exit %d: status %+v", tc.code, st)
		}
		if st.JobID != job.JobID {
			t.Errorf("status job id %q, want %q", st.JobID, job.JobID)
		}
		out, _ := os.ReadFile(b.path(folder, "hpcbot-1.out"))
		errOut, _ := os.ReadFile(b.path(folder, "hpcbot-1.err"))
		if string(out) != "data\n" || string(errOut) != "err\n" {
			t.Errorf("exit %d: stdout %q, stderr %q", tc.code, out, errOut)
		}
	}
}

func TestLocalArgvReachesProgramVerbatim(t *testing.T) {
	b := newBed(t, 0)
	b.stage("argv", map[string]string{"x": ""})
	args := []string{"a b", "'q'", `"dq"`, "$(touch pwned)", "`touch pwned`", "; touch pwned", "*", "-n", "ü\tx"}
	job := b.submit("argv", append([]string{"sh", "-c", `for a in "$@"; do printf '%s\n' "$a"; done`, "sh"}, args...)...)
	if st := b.waitFinal(job); st.State != plugins.StateSucceeded {
		t.Fatalf("status %+v", st)
	}
	out, _ := os.ReadFile(b.path("argv", "hpcbot-1.out"))
	if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, args) {
		t.Errorf("program saw %q, want %q", got, args)
	}
	if _, err := os.Stat(b.path("argv", "pwned")); err == nil {
		t.Error("an argument was run by the shell")
	}
}

func TestLocalCancelRunning(t *testing.T) {
	b := newBed(t, 0)
	b.stage("long", map[string]string{"x": ""})
	// The child sleep is in the job's process group and must die with it.
	job := b.submit("long", "sh", "-c", "sleep 300 & echo $! > child.pid; wait")
	b.waitFor(job, "running", func(s plugins.JobStatus) bool { return s.State == plugins.StateRunning })
	var child int
	for i := 0; i < 200 && child == 0; i++ {
		data, _ := os.ReadFile(b.path("long", "child.pid"))
		child, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.s.Cancel(ctxT(t), job); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	st := b.poll(job)[0]
	if st.State != plugins.StateCancelled {
		t.Fatalf("after cancel: %+v", st)
	}
	if alive(child) {
		t.Errorf("child process %d still alive after cancel", child)
	}
	// Cancelling again, or a finished job, is not an error.
	if err := b.s.Cancel(ctxT(t), job); err != nil {
		t.Errorf("second cancel: %v", err)
	}
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

func TestLocalSubmitRepeated(t *testing.T) {
	b := newBed(t, 0)
	b.stage("once", map[string]string{"x": ""})
	req := plugins.SubmitRequest{CalcID: 1, Folder: "once", Argv: []string{"sh", "-c", "echo run >> ../once.count"},
		Launch: plugins.LaunchWrapper, JobName: "hpcbot-1"}
	first, err := b.s.Submit(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent repeats, and a repeat from a restarted plugin.
	var wg sync.WaitGroup
	results := make([]plugins.SubmitResult, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := b.s
			if i%2 == 1 {
				s = b.restart()
			}
			results[i], errs[i] = s.Submit(ctxT(t), req)
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i].JobID != first.JobID || !results[i].Existing {
			t.Errorf("repeat %d: %+v, %v; want job %s existing", i, results[i], errs[i], first.JobID)
		}
	}
	b.waitFinal(plugins.JobRef{JobID: first.JobID, Folder: "once"})
	count, _ := os.ReadFile(filepath.Join(b.upload, "once.count"))
	if string(count) != "run\n" {
		t.Errorf("program ran %d times", strings.Count(string(count), "run"))
	}
}

func TestLocalSubmitAfterCrash(t *testing.T) {
	b := newBed(t, 0)
	req := func(folder string) plugins.SubmitRequest {
		return plugins.SubmitRequest{CalcID: 1, Folder: folder, Argv: []string{"sh", "-c", "echo run >> ../" + folder + ".count"},
			Launch: plugins.LaunchWrapper, JobName: "hpcbot-1"}
	}

	// Crash after mkdir of the lock, before the launcher ran: never launch again.
	b.stage("crash1", map[string]string{"x": ""})
	if err := os.Mkdir(b.path("crash1", cluster.SubmitLockDir), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := b.s.Submit(ctxT(t), req("crash1"))
	if !plugins.IsTransient(err) || !strings.Contains(err.Error(), "in progress or interrupted") {
		t.Fatalf("submit after a crash before launch: %v, want transient 'in progress or interrupted'", err)
	}
	if _, err := os.Stat(filepath.Join(b.upload, "crash1.count")); err == nil {
		t.Fatal("launched although a submission was recorded as started")
	}

	// Crash after the launcher started the job, before its exit code was recorded:
	// the job is found in the folder and adopted.
	b.stage("crash2", map[string]string{"x": ""})
	first, err := b.s.Submit(ctxT(t), req("crash2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{cluster.SubmitRCFile, cluster.SubmitOutFile} {
		if err := os.Remove(b.path("crash2", f)); err != nil {
			t.Fatal(err)
		}
	}
	again, err := b.restart().Submit(ctxT(t), req("crash2"))
	if err != nil || again.JobID != first.JobID || !again.Existing {
		t.Fatalf("submit after a crash after launch: %+v, %v; want job %s adopted", again, err, first.JobID)
	}
	// The adoption is recorded: later repeats answer without looking again.
	third, err := b.s.Submit(ctxT(t), req("crash2"))
	if err != nil || third.JobID != first.JobID {
		t.Fatalf("repeat after adoption: %+v, %v", third, err)
	}
	b.waitFinal(plugins.JobRef{JobID: first.JobID, Folder: "crash2"})
	count, _ := os.ReadFile(filepath.Join(b.upload, "crash2.count"))
	if string(count) != "run\n" {
		t.Errorf("program ran %d times", strings.Count(string(count), "run"))
	}
}

func TestLocalSubmitErrors(t *testing.T) {
	b := newBed(t, 0)
	_, err := b.s.Submit(ctxT(t), plugins.SubmitRequest{Folder: "missing", Argv: []string{"true"}, Launch: plugins.LaunchWrapper})
	if plugins.KindOf(err) != plugins.KindNotFound {
		t.Errorf("submit to an unstaged folder: %v, want not found", err)
	}
	for _, f := range []string{"", ".", "..", "a/b", "../x", ".hidden", "-x", "a b", "a;b", "ä"} {
		_, err := b.s.Submit(ctxT(t), plugins.SubmitRequest{Folder: f, Argv: []string{"true"}, Launch: plugins.LaunchWrapper})
		if plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("folder %q: %v, want a permanent error", f, err)
		}
		if err := b.s.Cleanup(ctxT(t), f); plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("cleanup %q: %v, want a permanent error", f, err)
		}
	}
}

func TestLocalFetch(t *testing.T) {
	b := newBed(t, 0)
	b.stage("fetch", map[string]string{"in.inp": "x"})
	job := b.submit("fetch", "sh", "-c", `printf 12345 > a.out; printf 1234567890 > big.out; printf 12 > b.log;
mkdir -p sub; printf 123 > sub/c.out; printf x > skip.chk; printf x > part.out.tmp; printf 1 > result.xyz; printf 1234 > z.out`)
	if st := b.waitFinal(job); st.State != plugins.StateSucceeded {
		t.Fatalf("status %+v", st)
	}
	local := filepath.Join(t.TempDir(), "res")
	res, err := b.s.Fetch(ctxT(t), plugins.FetchRequest{Folder: "fetch", LocalDir: local,
		Extensions: []string{".out", ".LOG"}, Files: []string{"result.xyz"}, MaxSize: 9, MaxTotal: 12})
	if err != nil {
		t.Fatal(err)
	}
	// Path order: a.out(5) b.log(2) big.out(10>9) hpcbot-1.out(0) result.xyz(1) sub/c.out(3) → total 11; z.out(4) over 12.
	wantFiles := []string{"a.out", "b.log", "hpcbot-1.out", "result.xyz", "sub/c.out"}
	if !slices.Equal(res.Files, wantFiles) || res.Bytes != 11 {
		t.Errorf("fetched %q (%d bytes), want %q (11)", res.Files, res.Bytes, wantFiles)
	}
	wantSkipped := []plugins.Skipped{
		{Path: "big.out", Size: 10, Code: plugins.SkipTooLarge},
		{Path: "hpcbot-1.err", Size: 0, Code: plugins.SkipNotWhitelisted},
		{Path: "in.inp", Size: 1, Code: plugins.SkipNotWhitelisted},
		{Path: "part.out.tmp", Size: 1, Code: plugins.SkipTemporary},
		{Path: "skip.chk", Size: 1, Code: plugins.SkipNotWhitelisted},
		{Path: "z.out", Size: 4, Code: plugins.SkipLimitReached},
	}
	for i := range res.Skipped {
		res.Skipped[i].Reason = "" // the English detail, for the log
	}
	if !slices.Equal(res.Skipped, wantSkipped) {
		t.Errorf("skipped %+v,\nwant %+v", res.Skipped, wantSkipped)
	}
	for _, f := range wantFiles {
		got, err := os.ReadFile(filepath.Join(local, filepath.FromSlash(f)))
		want, _ := os.ReadFile(b.path("fetch", f))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %q, %v; want %q", f, got, err, want)
		}
	}
	entries, _ := os.ReadDir(local)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("fetched hpcbot's own file %s", e.Name())
		}
	}
	if err := b.s.Cleanup(ctxT(t), "fetch"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path("fetch", "")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("folder still there after cleanup: %v", err)
	}
	if err := b.s.Cleanup(ctxT(t), "fetch"); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}

func TestLocalMaxJobsQueue(t *testing.T) {
	b := newBed(t, 1)
	// Each job waits for its own gate file, so the test decides when it ends.
	var jobs []plugins.JobRef
	for _, f := range []string{"q1", "q2", "q3"} {
		b.stage(f, map[string]string{"x": ""})
		jobs = append(jobs, b.submit(f, "sh", "-c", "while [ ! -e gate ]; do sleep 0.05; done; echo started >> ../order"))
	}
	states := func() []plugins.State {
		var s []plugins.State
		for _, st := range b.poll(jobs...) {
			s = append(s, st.State)
		}
		return s
	}
	want := []plugins.State{plugins.StateRunning, plugins.StatePending, plugins.StatePending}
	if got := states(); !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}

	// Cancel the last queued job: it never starts.
	if err := b.s.Cancel(ctxT(t), jobs[2]); err != nil {
		t.Fatal(err)
	}
	// The first job ends: the job's own end starts the next one; a restarted
	// plugin still sees the queue.
	b.touch("q1", "gate")
	b.s = b.restart()
	b.waitFinal(jobs[0])
	st := b.waitFor(jobs[1], "running", func(s plugins.JobStatus) bool { return s.State == plugins.StateRunning })
	if st.State != plugins.StateRunning {
		t.Fatal(st)
	}
	if st := b.poll(jobs[2])[0]; st.State != plugins.StateCancelled {
		t.Fatalf("cancelled queued job: %+v", st)
	}
	b.touch("q2", "gate")
	b.waitFinal(jobs[1])
	if _, err := os.Stat(b.path("q3", detached.PIDFile)); err == nil {
		t.Error("cancelled queued job was started")
	}
	pending, _ := os.ReadDir(filepath.Join(b.upload, detached.QueueDir, "pending"))
	if len(pending) != 0 {
		t.Errorf("queue not empty: %v", pending)
	}
}

func TestLocalQueueSurvivesLostDispatch(t *testing.T) {
	// A queued job whose dispatcher never ran (the host rebooted, say) is started by the next poll.
	b := newBed(t, 2)
	b.stage("w1", map[string]string{"x": ""})
	job := b.submit("w1", "true")
	b.waitFinal(job)
	b.stage("w2", map[string]string{"x": ""})
	job2 := b.submit("w2", "sh", "-c", "exit 5")
	b.waitFinal(job2)
	// Forge the state after a reboot: the job is queued but was never started.
	for _, f := range []string{detached.PIDFile, cluster.ExitCodeFile} {
		os.Remove(b.path("w2", f))
	}
	if err := os.WriteFile(filepath.Join(b.upload, detached.QueueDir, "pending", "1+w2"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st := b.waitFinal(job2)
	if st.State != plugins.StateFailed || st.ExitCode == nil || *st.ExitCode != 5 {
		t.Fatalf("status %+v", st)
	}
}

func TestLocalLostThenUnknown(t *testing.T) {
	b := newBed(t, 0)
	// A job whose process died without an exit code (killed with SIGKILL, say).
	b.stage("dead", map[string]string{"x": ""})
	job := b.submit("dead", "sh", "-c", "sleep 300")
	st := b.waitFor(job, "running", func(s plugins.JobStatus) bool { return s.State == plugins.StateRunning })
	data, _ := os.ReadFile(b.path("dead", detached.PIDFile))
	pid, _ := strconv.Atoi(strings.Fields(string(data))[0])
	syscall.Kill(-pid, syscall.SIGKILL)
	for alive(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	st = b.poll(job)[0]
	if st.State != plugins.StateLost {
		t.Fatalf("right after it vanished: %+v, want lost", st)
	}
	b.clock.Add(cluster.DefaultLostGrace - time.Second)
	if st = b.poll(job)[0]; st.State != plugins.StateLost {
		t.Fatalf("within the grace period: %+v, want lost", st)
	}
	b.clock.Add(2 * time.Second)
	if st = b.poll(job)[0]; st.State != plugins.StateUnknown || st.ExitCode != nil {
		t.Fatalf("after the grace period: %+v, want finished_unknown without exit code", st)
	}
}

func TestLocalCheck(t *testing.T) {
	b := newBed(t, 3)
	res, err := b.s.Check(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Scheduler, "local (") || !strings.Contains(res.Scheduler, "max_jobs 3") || res.Host == "" {
		t.Errorf("check: %+v", res)
	}
}

func TestLocalRelativeUploadPath(t *testing.T) {
	for _, maxJobs := range []int{0, 1} {
		t.Run("max_jobs="+strconv.Itoa(maxJobs), func(t *testing.T) {
			b := newRelativeBed(t, maxJobs)
			var jobs []plugins.JobRef
			for i, code := range []int{0, 3} {
				folder := "rel" + strconv.Itoa(i)
				b.stage(folder, map[string]string{"in": "x"})
				jobs = append(jobs, b.submit(folder, "sh", "-c", "cat in; exit "+strconv.Itoa(code)))
			}
			for i, code := range []int{0, 3} {
				st := b.waitFinal(jobs[i])
				if st.ExitCode == nil || *st.ExitCode != code {
					t.Errorf("job %d: %+v", i, st)
				}
			}
			b.stage("relcancel", map[string]string{"in": "x"})
			job := b.submit("relcancel", "sleep", "300")
			b.waitFor(job, "running", func(s plugins.JobStatus) bool { return s.State == plugins.StateRunning })
			if err := b.s.Cancel(ctxT(t), job); err != nil {
				t.Fatal(err)
			}
			if st := b.poll(job)[0]; st.State != plugins.StateCancelled {
				t.Errorf("cancelled: %+v", st)
			}
		})
	}
}

func TestLocalTail(t *testing.T) {
	b := newBed(t, 0)
	b.stage("tail", map[string]string{"in.inp": "x"})
	tail := func(req plugins.TailRequest) (plugins.TailResult, error) { return b.s.Tail(ctxT(t), req) }
	if _, err := tail(plugins.TailRequest{CalcID: 1, Folder: "tail", JobName: "hpcbot-1"}); plugins.KindOf(err) != plugins.KindNotFound {
		t.Fatalf("Tail before the job ran: %v, want kind not found", err)
	}
	job := b.submit("tail", tailProgram...)
	if st := b.waitFinal(job); st.State != plugins.StateFailed {
		t.Errorf("final status %+v", st)
	}
	checkTail(t, tail, "tail")
}
