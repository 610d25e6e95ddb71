package detached_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"hpcbot/internal/testbed"
	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/detached"
	"hpcbot/plugins/sshc"
)

// sshBed is the `ssh` plugin (detached dialect over sshc) on the test bed's sshd,
// with an upload_path relative to the test user's home.
type sshBed struct {
	t      *testing.T
	s      *cluster.Scheduler
	upload string
}

func newSSHBed(t *testing.T, env testbed.SSHEnv, maxJobs int) *sshBed {
	t.Helper()
	conn := plugins.Connection{Host: env.Host, Port: env.Port, User: env.User, KeyPath: env.KeyPath, KnownHosts: env.KnownHosts}
	upload := path.Join("hpcbot-it-ssh", fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()))
	// Short backoff so a test that restarts sshd need not wait the polite 15 s.
	newTr := func(c plugins.Cluster) (cluster.Transport, error) {
		return sshc.New(c.Connection, sshc.Options{BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
			HandshakeLimit: 100, Logger: slog.New(slog.DiscardHandler)})
	}
	d := detached.NewSSHDialect()
	s := cluster.New(d, newTr, cluster.WithSubmitWait(0), cluster.WithLogger(slog.New(slog.DiscardHandler)))
	if err := s.Configure(context.Background(), plugins.Cluster{Label: "ssh", Scheduler: "ssh", UploadPath: upload, Connection: conn, MaxJobs: maxJobs}); err != nil {
		t.Fatal(err)
	}
	b := &sshBed{t: t, s: s, upload: upload}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Stop whatever a failed test left running, then remove the folders.
		tr, err := newTr(plugins.Cluster{Connection: conn})
		if err == nil {
			tr.Run(ctx, "for f in "+upload+"/*/"+detached.PIDFile+"; do [ -e \"$f\" ] && read p _ <\"$f\" && kill -KILL -\"$p\" 2>/dev/null; done; rm -rf "+upload)
			tr.Close()
		}
		s.Close()
	})
	return b
}

func (b *sshBed) stage(folder string) {
	b.t.Helper()
	local := filepath.Join(b.t.TempDir(), folder)
	os.MkdirAll(local, 0o755)
	if err := os.WriteFile(filepath.Join(local, "in.inp"), []byte("input\n"), 0o644); err != nil {
		b.t.Fatal(err)
	}
	if err := b.s.Stage(ctxT(b.t), plugins.StageRequest{CalcID: 1, LocalDir: local, Folder: folder}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *sshBed) submit(folder string, argv ...string) plugins.JobRef {
	b.t.Helper()
	res, err := b.s.Submit(ctxT(b.t), plugins.SubmitRequest{CalcID: 1, Folder: folder, Argv: argv, Launch: plugins.LaunchWrapper, JobName: "hpcbot-1"})
	if err != nil || res.Existing {
		b.t.Fatalf("submit %s: %+v, %v", folder, res, err)
	}
	return plugins.JobRef{CalcID: 1, JobID: res.JobID, Folder: folder}
}

// waitFor polls until cond holds; transient errors (sshd down) are retried.
func (b *sshBed) waitFor(job plugins.JobRef, what string, cond func(plugins.JobStatus) bool) plugins.JobStatus {
	b.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := b.s.Poll(ctxT(b.t), []plugins.JobRef{job})
		if err != nil && !plugins.IsTransient(err) {
			b.t.Fatalf("poll: %v", err)
		}
		if err == nil && cond(st[0]) {
			return st[0]
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("job %s never %s (%v, %v)", job.JobID, what, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func isFinal(s plugins.JobStatus) bool   { return s.State.Final() }
func isRunning(s plugins.JobStatus) bool { return s.State == plugins.StateRunning }

func TestSSHPlugin(t *testing.T) {
	b := newSSHBed(t, testbed.SSH(t), 0)
	for _, code := range []int{0, 3} {
		folder := "exit" + strconv.Itoa(code)
		b.stage(folder)
		job := b.submit(folder, "sh", "-c", "cat in.inp; exit "+strconv.Itoa(code))
		st := b.waitFor(job, "finished", isFinal)
		if st.ExitCode == nil || *st.ExitCode != code {
			t.Errorf("exit %d: %+v", code, st)
		}
		again, err := b.s.Submit(ctxT(t), plugins.SubmitRequest{CalcID: 1, Folder: folder, Argv: []string{"false"}, Launch: plugins.LaunchWrapper})
		if err != nil || again.JobID != job.JobID || !again.Existing {
			t.Errorf("repeat: %+v, %v", again, err)
		}
	}
	local := filepath.Join(t.TempDir(), "res")
	res, err := b.s.Fetch(ctxT(t), plugins.FetchRequest{Folder: "exit3", LocalDir: local, Extensions: []string{".out", ".err"}})
	if err != nil || !slices.Equal(res.Files, []string{"hpcbot-1.err", "hpcbot-1.out"}) {
		t.Fatalf("fetch: %+v, %v", res, err)
	}
	if out, _ := os.ReadFile(filepath.Join(local, "hpcbot-1.out")); string(out) != "input\n" {
		t.Errorf("output %q", out)
	}

	b.stage("cancel")
	job := b.submit("cancel", "sleep", "300")
	b.waitFor(job, "running", isRunning)
	if err := b.s.Cancel(ctxT(t), job); err != nil {
		t.Fatal(err)
	}
	if st := b.waitFor(job, "finished", isFinal); st.State != plugins.StateCancelled {
		t.Errorf("cancel: %+v", st)
	}
	if err := b.s.Cleanup(ctxT(t), "cancel"); err != nil {
		t.Fatal(err)
	}
}

func TestSSHPluginMaxJobs(t *testing.T) {
	b := newSSHBed(t, testbed.SSH(t), 1)
	b.stage("first")
	b.stage("second")
	first := b.submit("first", "sh", "-c", "while [ ! -e gate ]; do sleep 0.1; done")
	second := b.submit("second", "true")
	st, err := b.s.Poll(ctxT(t), []plugins.JobRef{first, second})
	if err != nil || st[0].State != plugins.StateRunning || st[1].State != plugins.StatePending {
		t.Fatalf("with max_jobs 1: %+v, %v", st, err)
	}
	// Open the gate through the plugin's own transport: write a file into the folder.
	gate := filepath.Join(t.TempDir(), "g")
	os.MkdirAll(gate, 0o755)
	os.WriteFile(filepath.Join(gate, "gate"), nil, 0o644)
	if err := b.s.Stage(ctxT(t), plugins.StageRequest{LocalDir: gate, Folder: "first"}); err != nil {
		t.Fatal(err)
	}
	if st := b.waitFor(second, "finished", isFinal); st.State != plugins.StateSucceeded {
		t.Errorf("queued job: %+v", st)
	}
}

// TestSSHDownWhileJobRuns: the login node's sshd goes away while a job runs; polls
// fail transiently, the job goes on, and once sshd is back it is followed to the
// end and fetched.
func TestSSHDownWhileJobRuns(t *testing.T) {
	own := testbed.OwnSSHD(t)
	b := newSSHBed(t, own.SSHEnv, 0)
	b.stage("bounce")
	job := b.submit("bounce", "sh", "-c", "while [ ! -e ../release ]; do sleep 0.1; done; echo survived")
	b.waitFor(job, "running", isRunning)
	own.Stop(t)
	if _, err := b.s.Poll(ctxT(t), []plugins.JobRef{job}); !plugins.IsTransient(err) {
		t.Fatalf("poll with sshd down: %v, want a transient error", err)
	}
	// The job cannot end while we cannot see it: it waits for a file only we create.
	own.Start(t)
	tr, err := sshc.New(plugins.Connection{Host: own.Host, Port: own.Port, User: own.User, KeyPath: own.KeyPath, KnownHosts: own.KnownHosts}, sshc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Run(ctxT(t), "touch "+b.upload+"/release"); err != nil {
		t.Fatal(err)
	}
	if st := b.waitFor(job, "finished", isFinal); st.State != plugins.StateSucceeded {
		t.Fatalf("after sshd came back: %+v", st)
	}
	res, err := b.s.Fetch(ctxT(t), plugins.FetchRequest{Folder: "bounce", LocalDir: filepath.Join(t.TempDir(), "f"), Extensions: []string{".out"}})
	if err != nil || len(res.Files) != 1 {
		t.Fatalf("fetch: %+v, %v", res, err)
	}
}

// tailProgram prints 3000 lines (far above Tail's byte cap) and a hostile
// error line (a terminal escape, an invalid byte, a bidi override), then
// fails; checkTail reads both ends back through tail.
var tailProgram = []string{"sh", "-c",
	`i=0; while [ $i -lt 3000 ]; do echo "step $i"; i=$((i+1)); done; printf 'fatal: \033[31mSCF\033[0m \377 \342\200\256failed\n' >&2; exit 2`}

func checkTail(t *testing.T, tail func(plugins.TailRequest) (plugins.TailResult, error), folder string) {
	t.Helper()
	req := plugins.TailRequest{CalcID: 1, Folder: folder, JobName: "hpcbot-1", MaxLines: 30, MaxBytes: 16 << 10, PreferError: true}
	res, err := tail(req)
	if err != nil || res.Text != "fatal: SCF \uFFFD failed" || res.Stream != plugins.StreamError || res.Truncated {
		t.Errorf("Tail of the failed job = %+v, %v", res, err)
	}
	req.PreferError = false
	res, err = tail(req)
	lines := strings.Split(res.Text, "\n")
	if err != nil || len(lines) != 30 || lines[0] != "step 2970" || lines[29] != "step 2999" || !res.Truncated || res.Stream != plugins.StreamOutput {
		t.Errorf("Tail of the output: %d lines %q…%q, truncated %v, stream %q, %v", len(lines), lines[0], lines[len(lines)-1], res.Truncated, res.Stream, err)
	}
	req.Folder = "gone"
	if _, err := tail(req); plugins.KindOf(err) != plugins.KindNotFound {
		t.Errorf("Tail of a missing folder: %v, want kind not found", err)
	}
}

func TestSSHTail(t *testing.T) {
	b := newSSHBed(t, testbed.SSH(t), 0)
	b.stage("tail")
	tail := func(req plugins.TailRequest) (plugins.TailResult, error) { return b.s.Tail(ctxT(t), req) }
	if _, err := tail(plugins.TailRequest{CalcID: 1, Folder: "tail", JobName: "hpcbot-1"}); plugins.KindOf(err) != plugins.KindNotFound {
		t.Fatalf("Tail before the job ran: %v, want kind not found", err)
	}
	job := b.submit("tail", tailProgram...)
	if st := b.waitFor(job, "finished", isFinal); st.State != plugins.StateFailed || st.Node != "" {
		t.Errorf("final status %+v: want failed, no node", st)
	}
	checkTail(t, tail, "tail")
}
