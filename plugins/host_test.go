package plugins

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hpcbot/plugins/kit"
)

// newTestHost returns a Host whose built-ins are testRegistry served by this test
// binary, and the folder where its fakes record calls and read replies.
func newTestHost(t *testing.T, opts HostOptions) (*Host, string, *syncBuffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})
	opts.Executable = exe
	opts.Builtins = testRegistry
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.env = append(opts.env, envRecord+"="+dir)
	if opts.RestartMin == 0 {
		opts.RestartMin = time.Millisecond
	}
	if opts.RestartMax == 0 {
		opts.RestartMax = 20 * time.Millisecond
	}
	h, err := NewHost(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h, dir, logs
}

func fullCluster(label string) Cluster {
	return Cluster{
		Label:      label,
		Scheduler:  "fake",
		UploadPath: "/scratch/hpcbot",
		Connection: Connection{
			Host: "login1.example.org", Port: 2222, User: "chem", Password: "s3cret pass",
			KeyPath: "/etc/hpcbot/id_ed25519", KeyPassEnv: "HPCBOT_KEY_PASS",
			KnownHosts: "/etc/hpcbot/known_hosts", HostKey: "ssh-ed25519 AAAAC3Nza...",
		},
		JobIDRegex:    `Submitted batch job (\d+)`,
		MaxJobs:       8,
		Flavor:        "pro",
		Options:       map[string]string{"partition": "short", "qos": "normal"},
		RunAs:         "hpcbot-jobs",
		AllowSameUser: true,
	}
}

func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

func intp(n int) *int    { return &n }
func boolp(b bool) *bool { return &b }

// TestTailNotSupported: a plugin without Tail answers Unimplemented, which
// the host gives as an error wrapping ErrNotSupported, and the plugin keeps
// serving.
func TestTailNotSupported(t *testing.T) {
	h, _, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	cl := fullCluster("c1")
	cl.Scheduler = "fake-notail"
	s, err := h.Scheduler(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.(Tailer).Tail(ctx, TailRequest{CalcID: 1, JobID: "1", Folder: "f1", MaxLines: 30})
	if !errors.Is(err, ErrNotSupported) || KindOf(err) != KindPermanent {
		t.Fatalf("Tail of a plugin without it: %v, want ErrNotSupported (permanent)", err)
	}
	if err := s.Cleanup(ctx, "f1"); err != nil {
		t.Errorf("after the unsupported call: %v", err)
	}
}

func TestSchedulerRoundTrip(t *testing.T) {
	h, dir, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	cl := fullCluster("c1")
	s, err := h.Scheduler(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}

	var conf configureRec
	lastCall(t, dir, "Configure", &conf)
	conf.Cluster.Connection.Password = Secret(conf.Password)
	same(t, "Configure", conf.Cluster, cl)

	t.Run("Check", func(t *testing.T) {
		want := CheckResult{Scheduler: "slurm 22.05.8", Host: "login1", Detail: "3 partitions"}
		result(t, dir, "Check", want)
		got, err := s.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		same(t, "Check", got, want)
	})

	t.Run("Stage", func(t *testing.T) {
		for _, req := range []StageRequest{
			{CalcID: 1<<63 + 5, LocalDir: "/var/lib/hpcbot/dl/x", Folder: "1732640000_7_h2o"},
			{},
		} {
			if err := s.Stage(ctx, req); err != nil {
				t.Fatal(err)
			}
			var got StageRequest
			lastCall(t, dir, "Stage", &got)
			same(t, "Stage request", got, req)
		}
	})

	t.Run("Submit", func(t *testing.T) {
		for _, tc := range []struct {
			req  SubmitRequest
			want SubmitResult
		}{
			{
				SubmitRequest{
					CalcID: 42, Folder: "f42", Argv: []string{"orca", "h2o.inp", "--x=$(y)"}, Launch: LaunchBatch,
					Resources: map[string]string{"nodes": "1", "time": "1:00:00"}, JobName: "hpcbot-42",
					Comment: "hpcbot user=7 org=ipc",
				},
				SubmitResult{JobID: "123456", Output: "Submitted batch job 123456\n", Existing: true},
			},
			{SubmitRequest{}, SubmitResult{}},
		} {
			result(t, dir, "Submit", tc.want)
			got, err := s.Submit(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			same(t, "Submit result", got, tc.want)
			var req SubmitRequest
			lastCall(t, dir, "Submit", &req)
			same(t, "Submit request", req, tc.req)
		}
	})

	t.Run("Poll", func(t *testing.T) {
		start := time.Date(2026, 11, 26, 17, 0, 0, 123456789, time.UTC)
		refs := []JobRef{
			{CalcID: 1, JobID: "11", Folder: "f1", Launch: LaunchBatch},
			{CalcID: 2, JobID: "12", Folder: "f2", Launch: LaunchWrapper},
			{CalcID: 3, JobID: "13"},
		}
		want := []JobStatus{
			{JobID: "11", State: StateSucceeded, Raw: "CD", ExitCode: intp(0), Reason: "None", Started: start, Ended: start.Add(time.Hour),
				Elapsed: time.Hour, AllocCPUs: 8, Node: "node[01-04]"}, // the scheduler's accounting crosses the plugin boundary
			{JobID: "12", State: StatePending, Raw: "PD", Reason: "Priority"}, // no exit code, no times
			{JobID: "13", State: StateFailed, Raw: "OUT_OF_MEMORY", ExitCode: intp(137), Started: start},
		}
		result(t, dir, "Poll", want)
		got, err := s.Poll(ctx, refs)
		if err != nil {
			t.Fatal(err)
		}
		same(t, "Poll result", got, want)
		var req []JobRef
		lastCall(t, dir, "Poll", &req)
		same(t, "Poll request", req, refs)
		if got[1].ExitCode != nil || got[0].ExitCode == nil {
			t.Errorf("exit codes: nil must stay nil and 0 must stay 0: %v %v", got[1].ExitCode, got[0].ExitCode)
		}

		// Zero jobs.
		result(t, dir, "Poll", []JobStatus{})
		got, err = s.Poll(ctx, nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("Poll(nil) = %v, %v", got, err)
		}

		// A plugin that breaks "one status per ref" is caught.
		result(t, dir, "Poll", want[:1])
		if _, err := s.Poll(ctx, refs); err == nil || !IsTransient(err) {
			t.Errorf("Poll with a short answer: %v, want a transient error", err)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		ref := JobRef{CalcID: 9, JobID: "99", Folder: "f9", Launch: LaunchBatch}
		if err := s.Cancel(ctx, ref); err != nil {
			t.Fatal(err)
		}
		var got JobRef
		lastCall(t, dir, "Cancel", &got)
		same(t, "Cancel request", got, ref)
	})

	t.Run("Fetch", func(t *testing.T) {
		req := FetchRequest{
			Folder: "f42", LocalDir: "/var/lib/hpcbot/dl/f42", Extensions: []string{".out", ".xyz"},
			Files: []string{"result.chk"}, MaxSize: 50 << 20, MaxTotal: 1 << 30,
		}
		want := FetchResult{
			Files: []string{"h2o.out", "sub/h2o.xyz"}, Bytes: 12345,
			Skipped: []Skipped{
				{Path: "big.gbw", Size: 60 << 20, Code: SkipTooLarge, Reason: "too large: 62914560 bytes"},
				{Path: "link.out", Code: SkipLink},
				{Path: "x.tmp", Code: SkipTemporary, Reason: "temporary file"},
			},
		}
		result(t, dir, "Fetch", want)
		got, err := s.Fetch(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		same(t, "Fetch result", got, want)
		var gotReq FetchRequest
		lastCall(t, dir, "Fetch", &gotReq)
		same(t, "Fetch request", gotReq, req)

		// A plugin older than codes sends English text only; one that sends a
		// code hpcbot does not know is the same: "other", the text for the log.
		result(t, dir, "Fetch", FetchResult{Skipped: []Skipped{
			{Path: "a.chk", Reason: "checkpoint not wanted"}, {Path: "b.chk", Code: "quota_exceeded", Reason: "over quota"}}})
		got, err = s.Fetch(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		same(t, "Fetch result of an older plugin", got.Skipped, []Skipped{
			{Path: "a.chk", Code: SkipOther, Reason: "checkpoint not wanted"},
			{Path: "b.chk", Code: SkipOther, Reason: "code quota_exceeded; over quota"}})
	})

	t.Run("Tail", func(t *testing.T) {
		tailer, ok := s.(Tailer)
		if !ok {
			t.Fatal("the host's scheduler is not a Tailer")
		}
		req := TailRequest{CalcID: 42, JobID: "123", Folder: "f42", JobName: "hpcbot-42", MaxLines: 30, MaxBytes: 4096, PreferError: true}
		want := TailResult{Text: "SCF not converged\n\tstep 3", Stream: StreamError, Truncated: true}
		result(t, dir, "Tail", want)
		got, err := tailer.Tail(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		same(t, "Tail result", got, want)
		var gotReq TailRequest
		lastCall(t, dir, "Tail", &gotReq)
		same(t, "Tail request", gotReq, req)

		// The caps are hpcbot's: a larger request is clamped before it leaves.
		result(t, dir, "Tail", TailResult{Stream: StreamOutput})
		if _, err := tailer.Tail(ctx, TailRequest{Folder: "f42", MaxLines: 5000, MaxBytes: 1 << 30}); err != nil {
			t.Fatal(err)
		}
		lastCall(t, dir, "Tail", &gotReq)
		if gotReq.MaxLines != MaxTailLines || gotReq.MaxBytes != MaxTailBytes {
			t.Errorf("plugin was asked for %d lines, %d bytes; want the caps %d, %d", gotReq.MaxLines, gotReq.MaxBytes, MaxTailLines, MaxTailBytes)
		}

		// Whatever the plugin answers is cut to the caps and cleaned again.
		long := strings.Repeat("line \x1b[31mred\x1b[0m\x07\n", 50)
		result(t, dir, "Tail", TailResult{Text: long, Stream: StreamOutput})
		got, err = tailer.Tail(ctx, TailRequest{Folder: "f42", MaxLines: 3, MaxBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		same(t, "Tail of a plugin that ignored the caps", got, TailResult{Text: "line red\nline red\nline red", Stream: StreamOutput, Truncated: true})

		// A stream that is neither output nor error breaks the contract.
		result(t, dir, "Tail", TailResult{Text: "x", Stream: "stdout"})
		if _, err := tailer.Tail(ctx, req); err == nil || errors.Is(err, ErrNotSupported) {
			t.Errorf("Tail with stream %q: %v, want a contract error", "stdout", err)
		}

		// The plugin's NotFound crosses as such (no output yet).
		nf := KindNotFound
		reply(t, dir, "Tail", fakeReply{Kind: &nf, Msg: "no output yet"})
		if _, err := tailer.Tail(ctx, req); KindOf(err) != KindNotFound {
			t.Errorf("Tail of a job without output: %v, want kind not found", err)
		}
	})

	t.Run("Cleanup", func(t *testing.T) {
		if err := s.Cleanup(ctx, "f42"); err != nil {
			t.Fatal(err)
		}
		var got string
		lastCall(t, dir, "Cleanup", &got)
		same(t, "Cleanup folder", got, "f42")
	})

	t.Run("Configure again", func(t *testing.T) {
		c2 := cl
		c2.UploadPath = "/other"
		c2.Options = nil
		if err := s.Configure(ctx, c2); err != nil {
			t.Fatal(err)
		}
		var got configureRec
		lastCall(t, dir, "Configure", &got)
		got.Cluster.Connection.Password = Secret(got.Password)
		same(t, "Configure", got.Cluster, c2)
	})

	st := h.Plugins()
	if len(st) != 1 {
		t.Fatalf("Plugins() = %+v", st)
	}
	want := Status{
		Kind: PluginScheduler, Name: "fake", Cluster: "c1", Clusters: []string{"c1"}, Path: h.opts.Executable, Builtin: true,
		PluginName: "fake", Version: "fake-1.0", Running: true, PID: st[0].PID,
	}
	same(t, "status", st[0], want)
	if pid := lastCall(t, dir, "Check", nil); pid != st[0].PID || pid == os.Getpid() {
		t.Errorf("Check served by pid %d, status says %d, test is %d", pid, st[0].PID, os.Getpid())
	}
}

func TestOneProcessPerCluster(t *testing.T) {
	h, _, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	for _, label := range []string{"a", "b"} {
		if _, err := h.Scheduler(ctx, fullCluster(label)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Runner(ctx, "a", "fake", nil); err != nil {
		t.Fatal(err)
	}
	st := h.Plugins()
	if len(st) != 3 || st[0].PID == st[1].PID || st[1].PID == st[2].PID || st[0].PID == st[2].PID {
		t.Errorf("want three processes: %+v", st)
	}
	if _, err := h.Scheduler(ctx, fullCluster("a")); err == nil || KindOf(err) != KindPermanent {
		t.Errorf("second scheduler for cluster a: %v, want a permanent error", err)
	}
}

func TestRunnerRoundTrip(t *testing.T) {
	h, dir, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	rules := []RunnerRule{
		{
			Runner: "fake", Program: "orca", Launch: LaunchBatch, AllowedArgs: []string{`\S+\.inp`, "--v"},
			DefaultArgs: []string{"{}"}, Associations: []string{".inp"}, Description: "ORCA 6",
			Resources: map[string]string{"ntasks": "8"}, Results: []string{".gbw", "orca.out"}, Failover: boolp(true),
			MaxCores: 16, MaxMemory: "64GB",
		},
		{Program: "xtb", Failover: boolp(false)},
		{Program: "bare"}, // Failover nil: the core's default
	}
	r, err := h.Runner(ctx, "c1", "fake", rules)
	if err != nil {
		t.Fatal(err)
	}
	var conf runnerConfigureRec
	lastCall(t, dir, "Configure", &conf)
	same(t, "Configure", conf, runnerConfigureRec{Cluster: "c1", Rules: rules})

	info := RunnerInfo{Name: "fake", Version: "v0.1", Programs: []ProgramInfo{
		{Program: "orca", Description: "ORCA 6", AllowedArgs: []string{`\S+\.inp`}, DefaultArgs: []string{"{}"}, Associations: []string{".inp"}, Launch: LaunchBatch},
		{Program: "xtb"},
	}}
	result(t, dir, "Info", info)
	gotInfo, err := r.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "Info", gotInfo, info)

	plan := Plan{
		Program: "orca", Argv: []string{"orca", "h2o.inp"}, Launch: LaunchBatch,
		Resources: map[string]string{"ntasks": "8"}, Extensions: []string{".gbw"}, Files: []string{"orca.out"}, Failover: true,
	}
	result(t, dir, "Plan", plan)
	req := PlanRequest{FileName: "h2o.inp", Caption: `orca "h2o.inp"`}
	gotPlan, err := r.Plan(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "Plan", gotPlan, plan)
	var gotReq PlanRequest
	lastCall(t, dir, "Plan", &gotReq)
	same(t, "Plan request", gotReq, req)

	for _, want := range []Refusal{{Code: RefuseArgNotAllowed, Detail: "; rm -rf ~"}, {Code: RefuseNoProgram}} {
		reply(t, dir, "Plan", fakeReply{Refusal: &want})
		_, err = r.Plan(ctx, PlanRequest{FileName: "x.inp", Caption: "orca ; rm -rf ~"})
		var ref *Refusal
		if !errors.As(err, &ref) {
			t.Fatalf("Plan refused: got %T %v, want *Refusal", err, err)
		}
		same(t, "refusal", *ref, want)
	}

	st := h.Plugins()
	if len(st) != 1 || st[0].Kind != PluginRunner || st[0].PluginName != "fake" || st[0].Version != kit.BuildVersion() {
		t.Errorf("runner status %+v, want version %q from the build info", st, kit.BuildVersion())
	}
}

func TestErrorKindsCrossTheBoundary(t *testing.T) {
	h, dir, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	s, err := h.Scheduler(ctx, fullCluster("c1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Kind{KindTransient, KindPermanent, KindAuth, KindNotFound} {
		msg := "cluster says: " + k.String()
		reply(t, dir, "Cleanup", fakeReply{Kind: &k, Msg: msg})
		err := s.Cleanup(ctx, "f")
		if err == nil || KindOf(err) != k || err.Error() != msg {
			t.Errorf("kind %v: got %v (kind %v)", k, err, KindOf(err))
		}
	}
	// An error without a kind is transient, its message kept.
	reply(t, dir, "Cleanup", fakeReply{Msg: "plain failure"})
	if err := s.Cleanup(ctx, "f"); !IsTransient(err) || err.Error() != "plain failure" {
		t.Errorf("plain error: got %v (kind %v)", err, KindOf(err))
	}
	// A failed Configure fails the start, with its kind.
	_, err = h.Runner(ctx, "c1", "fake", nil) // configured fine
	if err != nil {
		t.Fatal(err)
	}
	perm := KindPermanent
	reply(t, dir, "Configure", fakeReply{Kind: &perm, Msg: "upload_path is not absolute"})
	_, err = h.Scheduler(ctx, fullCluster("c2"))
	if KindOf(err) != KindPermanent || !strings.Contains(err.Error(), "upload_path is not absolute") {
		t.Errorf("failed Configure: %v (kind %v)", err, KindOf(err))
	}
}

func TestProtocolVersionMismatch(t *testing.T) {
	h, _, _ := newTestHost(t, HostOptions{env: []string{envProtocol + "=3"}})
	_, err := h.Scheduler(context.Background(), fullCluster("c1"))
	if err == nil {
		t.Fatal("a plugin speaking protocol 3 was accepted")
	}
	if KindOf(err) != KindPermanent || !strings.Contains(err.Error(), "protocol version 3") ||
		!strings.Contains(err.Error(), "speaks versions 1 and 2") {
		t.Errorf("got %q (kind %v); want a permanent error naming versions 3, 1 and 2", err, KindOf(err))
	}
	if len(h.Plugins()) != 0 {
		t.Errorf("a refused plugin is listed: %+v", h.Plugins())
	}
}

func TestNotAPlugin(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "hpcbot-scheduler-liar")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h, _, _ := newTestHost(t, HostOptions{PluginDir: dir})
	c := fullCluster("c1")
	c.Scheduler = "liar"
	_, err := h.Scheduler(context.Background(), c)
	if KindOf(err) != KindPermanent || !strings.Contains(err.Error(), "not an hpcbot plugin") {
		t.Errorf("got %v (kind %v), want a permanent 'not an hpcbot plugin'", err, KindOf(err))
	}
}

func TestUnknownPlugin(t *testing.T) {
	h, _, _ := newTestHost(t, HostOptions{PluginDir: t.TempDir()})
	c := fullCluster("c1")
	for _, name := range []string{"nope", "../fake", ""} {
		c.Scheduler = name
		_, err := h.Scheduler(context.Background(), c)
		if KindOf(err) != KindPermanent || err == nil {
			t.Errorf("scheduler %q: got %v, want a permanent error", name, err)
		}
	}
	c.Scheduler = "nope"
	_, err := h.Scheduler(context.Background(), c)
	if !strings.Contains(err.Error(), "fake, fake-dropin") || !strings.Contains(err.Error(), "hpcbot-scheduler-nope") {
		t.Errorf("error should name the built-ins and the drop-in path: %v", err)
	}
}

func TestKilledMidCall(t *testing.T) {
	h, dir, logs := newTestHost(t, HostOptions{})
	ctx := context.Background()
	s, err := h.Scheduler(ctx, fullCluster("c1"))
	if err != nil {
		t.Fatal(err)
	}
	first := h.Plugins()[0].PID

	reply(t, dir, "Poll", fakeReply{Kill: true})
	_, err = s.Poll(ctx, []JobRef{{JobID: "1"}})
	if err == nil || !IsTransient(err) {
		t.Fatalf("Poll on a plugin killed mid-call: %v, want a transient error", err)
	}

	// The next Poll waits for the restart and is served by the new process.
	want := []JobStatus{{JobID: "1", State: StateRunning, Raw: "R"}}
	result(t, dir, "Poll", want)
	got, err := s.Poll(ctx, []JobRef{{JobID: "1"}})
	if err != nil {
		t.Fatalf("Poll after the restart: %v", err)
	}
	same(t, "Poll after restart", got, want)
	st := h.Plugins()[0]
	if st.Restarts != 1 || !st.Running || st.PID == first || st.PID == 0 || st.LastError == "" {
		t.Errorf("status after one restart: %+v (first pid %d)", st, first)
	}
	if pid := lastCall(t, dir, "Poll", nil); pid != st.PID {
		t.Errorf("Poll served by pid %d, want the new process %d", pid, st.PID)
	}
	// The restarted process was configured again.
	var conf configureRec
	if pid := lastCall(t, dir, "Configure", &conf); pid != st.PID || conf.Cluster.Label != "c1" {
		t.Errorf("restarted process not configured: pid %d, cluster %q", pid, conf.Cluster.Label)
	}
	_ = h.Close()
	if !strings.Contains(logs.String(), "plugin process exited; restarting") {
		t.Error("the death was not logged")
	}
}

func TestKilledBetweenCalls(t *testing.T) {
	h, dir, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	s, err := h.Scheduler(ctx, fullCluster("c1"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		pid := h.Plugins()[0].PID
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { st := h.Plugins()[0]; return st.Restarts == i && st.Running })
		result(t, dir, "Check", CheckResult{Scheduler: "fake"})
		if _, err := s.Check(ctx); err != nil {
			t.Fatalf("Check after restart %d: %v", i, err)
		}
	}
}

// waitFor waits until cond holds; the test fails if that takes unreasonably long.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition never held")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestDeadlines(t *testing.T) {
	ctx := context.Background()
	t.Run("caller's ctx", func(t *testing.T) {
		h, dir, _ := newTestHost(t, HostOptions{})
		s, err := h.Scheduler(ctx, fullCluster("c1"))
		if err != nil {
			t.Fatal(err)
		}
		reply(t, dir, "Poll", fakeReply{Block: true})
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err = s.Poll(cctx, nil)
		if !IsTransient(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("blocked Poll: %v, want a transient deadline error", err)
		}
		// The plugin gave up too and still serves.
		if err := s.Cleanup(ctx, "f"); err != nil {
			t.Errorf("Cleanup after a timed-out Poll: %v", err)
		}
		if h.Plugins()[0].Restarts != 0 {
			t.Error("a timeout restarted the plugin")
		}
	})
	t.Run("CallTimeout, and transfers exempt", func(t *testing.T) {
		h, dir, _ := newTestHost(t, HostOptions{CallTimeout: time.Nanosecond})
		s, err := h.Scheduler(ctx, fullCluster("c1"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Check(ctx)
		if !IsTransient(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Check past CallTimeout: %v, want a transient deadline error", err)
		}
		// Stage and Fetch get TransferTimeout, not CallTimeout.
		if err := s.Stage(ctx, StageRequest{Folder: "f"}); err != nil {
			t.Errorf("Stage: %v", err)
		}
		result(t, dir, "Fetch", FetchResult{Files: []string{"a.out"}})
		if res, err := s.Fetch(ctx, FetchRequest{Folder: "f"}); err != nil || len(res.Files) != 1 {
			t.Errorf("Fetch: %v %v", res, err)
		}
	})
	t.Run("transfer keeps the caller's deadline", func(t *testing.T) {
		h, dir, _ := newTestHost(t, HostOptions{})
		s, err := h.Scheduler(ctx, fullCluster("c1"))
		if err != nil {
			t.Fatal(err)
		}
		reply(t, dir, "Fetch", fakeReply{Block: true})
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := s.Fetch(cctx, FetchRequest{}); !IsTransient(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("blocked Fetch: %v, want a transient deadline error", err)
		}
	})
}

func TestCloseEndsCalls(t *testing.T) {
	h, dir, logs := newTestHost(t, HostOptions{})
	ctx := context.Background()
	s, err := h.Scheduler(ctx, fullCluster("c1"))
	if err != nil {
		t.Fatal(err)
	}
	reply(t, dir, "Poll", fakeReply{Block: true})
	errc := make(chan error, 1)
	go func() {
		_, err := s.Poll(ctx, nil)
		errc <- err
	}()
	waitFor(t, func() bool { return len(calls(t, dir)) >= 2 }) // Configure, Poll
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !IsTransient(err) {
		t.Errorf("Poll in flight at Close: %v, want a transient error", err)
	}
	if err := s.Cleanup(ctx, "f"); !IsTransient(err) {
		t.Errorf("call after Close: %v, want a transient error", err)
	}
	if _, err := h.Scheduler(ctx, fullCluster("c2")); !IsTransient(err) {
		t.Errorf("Scheduler after Close: %v, want a transient error", err)
	}
	// The plugin's own log records reached the host's log, tagged.
	found := false
	for _, r := range logs.records(t) {
		if r["msg"] == "fake call" && r["plugin"] == "fake" && r["cluster"] == "c1" && r["method"] == "Poll" {
			found = true
		}
	}
	if !found {
		t.Errorf("the plugin's log record did not reach the host tagged with plugin and cluster:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Error("the password reached the log")
	}
}

func TestDropInOverridesBuiltin(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "hpcbot-scheduler-fake")
	body := "#!/bin/sh\nexec '" + exe + "' plugin serve scheduler fake-dropin\n"
	if strings.Contains(exe, "'") {
		t.Skip("test binary path contains a quote")
	}
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	h, _, _ := newTestHost(t, HostOptions{PluginDir: dir})
	if _, err := h.Scheduler(context.Background(), fullCluster("c1")); err != nil {
		t.Fatal(err)
	}
	st := h.Plugins()[0]
	if st.Builtin || st.Path != script || st.PluginName != "fake-dropin" {
		t.Errorf("drop-in did not win over the built-in: %+v", st)
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil { // umask-proof
			t.Fatal(err)
		}
	}
	write("hpcbot-scheduler-lsf", 0o755)
	write("hpcbot-runner-gaussian_16", 0o700)
	write("hpcbot-scheduler-noexec", 0o644)
	write("hpcbot-scheduler-Upper", 0o755)
	write("hpcbot-scheduler-x.sh", 0o755)
	write("hpcbot-scheduler-", 0o755)
	write("hpcbot-other-foo", 0o755)
	write("README", 0o755)
	write("target", 0o755)
	if err := os.Mkdir(filepath.Join(dir, "hpcbot-scheduler-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(dir, "hpcbot-runner-linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("missing", filepath.Join(dir, "hpcbot-runner-dangling")); err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(HostOptions{PluginDir: dir, Executable: "/bin/false", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.Discover()
	if err != nil {
		t.Fatal(err)
	}
	want := []Found{
		{Kind: PluginRunner, Name: "gaussian_16", Path: filepath.Join(dir, "hpcbot-runner-gaussian_16")},
		{Kind: PluginRunner, Name: "linked", Path: filepath.Join(dir, "hpcbot-runner-linked")},
		{Kind: PluginScheduler, Name: "lsf", Path: filepath.Join(dir, "hpcbot-scheduler-lsf")},
	}
	same(t, "Discover", got, want)

	if _, err := (&Host{opts: HostOptions{PluginDir: filepath.Join(dir, "missing")}, log: slog.New(slog.DiscardHandler)}).Discover(); err == nil {
		t.Error("a missing plugin folder is not reported")
	}
	if got, err := (&Host{log: slog.New(slog.DiscardHandler)}).Discover(); err != nil || got != nil {
		t.Errorf("no plugin folder: %v %v", got, err)
	}
}

func TestServeRefusesToRunByHand(t *testing.T) {
	t.Setenv(cookieKey, "")
	if err := Serve(PluginScheduler, "fake", testRegistry); !errors.Is(err, errNotStartedByHost) {
		t.Errorf("Serve by hand: %v", err)
	}
	t.Setenv(cookieKey, cookieValue)
	if err := Serve("bogus", "fake", testRegistry); err == nil {
		t.Error("unknown kind served")
	}
	if err := Serve(PluginRunner, "nope", testRegistry); err == nil || !strings.Contains(err.Error(), "fake") {
		t.Errorf("unknown runner: %v, want an error naming the built-ins", err)
	}
}

func TestPluginExitsWithItsHost(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to see a zombie")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// sh (the "host") starts the plugin in the background and exits: at once, or
	// once the plugin serves (it has printed its address).
	for name, script := range map[string]string{
		"orphaned at birth": `HPCBOT_PLUGIN_HOST_PID=$$ "$0" plugin serve scheduler fake >"$1" 2>/dev/null </dev/null & echo $!`,
		"orphaned later": `HPCBOT_PLUGIN_HOST_PID=$$ "$0" plugin serve scheduler fake >"$1" 2>/dev/null </dev/null & echo $!
			while [ ! -s "$1" ]; do sleep 0.05; done`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command("sh", "-c", script, exe, filepath.Join(dir, "stdout"))
			cmd.Env = append(os.Environ(), cookieKey+"="+cookieValue, envRecord+"="+dir)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			waitFor(t, func() bool {
				stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
				if err != nil {
					return true // gone and reaped
				}
				// "pid (comm) S ...": the state follows the last ')'.
				s := string(stat)
				i := strings.LastIndexByte(s, ')')
				return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
			})
		})
	}
}

func TestRestartRetriesAFailedStart(t *testing.T) {
	h, dir, logs := newTestHost(t, HostOptions{})
	ctx := context.Background()
	s, err := h.Scheduler(ctx, fullCluster("c1"))
	if err != nil {
		t.Fatal(err)
	}
	// The process dies mid-Poll, and its successor dies in Configure: the third one serves.
	reply(t, dir, "Configure", fakeReply{Kill: true})
	reply(t, dir, "Poll", fakeReply{Kill: true})
	if _, err := s.Poll(ctx, nil); !IsTransient(err) {
		t.Fatalf("Poll: %v, want a transient error", err)
	}
	for {
		_, err := s.Poll(ctx, nil)
		if err == nil {
			break
		}
		// Between the failed and the next attempt, calls fail fast and transiently.
		if !IsTransient(err) || !strings.Contains(err.Error(), "restarting") {
			t.Fatalf("Poll while restarting: %v", err)
		}
		waitFor(t, func() bool { return h.Plugins()[0].Running })
	}
	st := h.Plugins()[0]
	if st.Restarts != 1 || !st.Running || !strings.Contains(st.LastError, "configure") {
		t.Errorf("status: %+v", st)
	}
	n := 0
	for _, c := range calls(t, dir) {
		if c.Method == "Configure" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d Configure calls, want 3 (start, failed restart, restart)", n)
	}
	_ = h.Close()
	if !strings.Contains(logs.String(), "plugin restart failed") {
		t.Error("the failed restart was not logged")
	}
}

func TestCloseKillsAFrozenPlugin(t *testing.T) {
	h, _, _ := newTestHost(t, HostOptions{})
	if _, err := h.Scheduler(context.Background(), fullCluster("c1")); err != nil {
		t.Fatal(err)
	}
	pid := h.Plugins()[0].PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := h.Close(); err != nil { // returns: go-plugin's shutdown call alone would hang
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(stat), ") Z") {
			t.Errorf("the frozen plugin %d still runs: %s", pid, stat)
		}
	}
}
