package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/internal/testbed"
	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
	"hpcbot/plugins/slurm"
	"hpcbot/plugins/sshc"
	"hpcbot/runners/command"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// The benchmarks recorded in BENCHMARKS.md. They never assert on time: they
// report ns/op, allocations and the counts below, and fail only when a result
// is wrong (a poll that misreports a job, a submit without a job id).
//
//	go test -run '^$' -bench 'Poll10k' -benchmem .
//	go test -run '^$' -bench 'Submit' -benchtime=20x .   (needs the test bed)

// envMemSlurm makes this test binary, started by the plugin host as the drop-in
// hpcbot-scheduler-memslurm (a symlink to the test binary), serve the Slurm
// dialect over memTransport instead of running tests; its value is the file
// that counts the transport's Run calls, one byte per call.
const envMemSlurm = "HPCBOT_BENCH_MEMSLURM_RUNS"

func init() {
	runs := os.Getenv(envMemSlurm)
	if runs == "" || !strings.HasPrefix(filepath.Base(os.Args[0]), "hpcbot-scheduler-") {
		return
	}
	if err := plugins.ServeScheduler(newMemSlurm(runs)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// newMemSlurm is the real generic Scheduler with the real Slurm dialect, whose
// transport answers from memory. runsFile, if not empty, gets one byte per Run.
func newMemSlurm(runsFile string) *cluster.Scheduler {
	return cluster.New(slurm.NewDialect(), func(plugins.Cluster) (cluster.Transport, error) {
		return &memTransport{runsFile: runsFile}, nil
	}, cluster.WithLogger(slog.New(slog.DiscardHandler)))
}

// Jobs of the 10,000-job poll: ids 1000001..1010000 (seven digits, as on a busy
// cluster), folder f<id>. What the fake cluster knows about a job depends on
// id%100, a stress mix in which 13 % of the jobs finished since the last poll
// and all three steps of cluster.Scheduler.Poll are needed:
//
//	0      gone from squeue and sacct; its exit-code file says 0   → succeeded
//	1..5   gone from squeue; sacct COMPLETED 0:0                   → succeeded
//	6..8   gone from squeue; sacct FAILED 3:0                      → failed
//	9      gone from squeue; sacct CANCELLED by 1001               → cancelled
//	10     squeue FAILED (no exit code there); sacct FAILED 3:0    → failed
//	11     squeue CANCELLED; sacct CANCELLED by 1001               → cancelled
//	12     squeue COMPLETED                                        → succeeded
//	13..56 squeue PENDING                                          → pending
//	57..99 squeue RUNNING                                          → running
const (
	pollJobs    = 10000
	firstPollID = 1000001
)

// The squeue and sacct lines below are lines of plugins/slurm/testdata
// (squeue_mixed.txt, finished_sacct.txt, printed by Slurm 22.05.8) with the id replaced.
const (
	squeuePending   = "^^^PENDING^^^BeginTime^^^2026-11-26T19:11:28^^^NONE\n"
	squeueRunning   = "^^^RUNNING^^^None^^^2026-11-26T18:11:28^^^NONE\n"
	squeueCompleted = "^^^COMPLETED^^^None^^^2026-11-26T18:11:28^^^2026-11-26T18:11:36\n"
	squeueFailed    = "^^^FAILED^^^NonZeroExitCode^^^2026-11-26T18:11:28^^^2026-11-26T18:11:36\n"
	squeueCancelled = "^^^CANCELLED^^^None^^^2026-11-26T18:11:28^^^2026-11-26T18:11:37\n"
	sacctCompleted  = "|COMPLETED|0:0|2026-11-26T18:11:28|2026-11-26T18:11:36\n"
	sacctFailed     = "|FAILED|3:0|2026-11-26T18:11:28|2026-11-26T18:11:36\n"
	sacctCancelled  = "|CANCELLED by 1001|0:0|2026-11-26T18:11:28|2026-11-26T18:11:37\n"
)

func squeueLine(k int) string {
	switch {
	case k == 10:
		return squeueFailed
	case k == 11:
		return squeueCancelled
	case k == 12:
		return squeueCompleted
	case k >= 13 && k <= 56:
		return squeuePending
	case k >= 57:
		return squeueRunning
	}
	return ""
}

func sacctLine(k int) string {
	switch {
	case k >= 1 && k <= 5:
		return sacctCompleted
	case k >= 6 && k <= 8 || k == 10:
		return sacctFailed
	case k == 9 || k == 11:
		return sacctCancelled
	}
	return ""
}

// wantState is the state Poll must report for kind k.
func wantState(k int) plugins.State {
	switch {
	case k == 0 || k >= 1 && k <= 5 || k == 12:
		return plugins.StateSucceeded
	case k >= 6 && k <= 8 || k == 10:
		return plugins.StateFailed
	case k == 9 || k == 11:
		return plugins.StateCancelled
	case k <= 56:
		return plugins.StatePending
	}
	return plugins.StateRunning
}

func pollRefs() []plugins.JobRef {
	refs := make([]plugins.JobRef, pollJobs)
	for i := range refs {
		id := strconv.Itoa(firstPollID + i)
		refs[i] = plugins.JobRef{CalcID: uint64(i + 1), JobID: id, Folder: "f" + id, Launch: plugins.LaunchBatch}
	}
	return refs
}

// checkPoll fails b unless every job got the state the fake cluster implies.
func checkPoll(b *testing.B, refs []plugins.JobRef, got []plugins.JobStatus) {
	b.Helper()
	if len(got) != len(refs) {
		b.Fatalf("poll returned %d statuses for %d jobs", len(got), len(refs))
	}
	for i, st := range got {
		id, _ := strconv.Atoi(refs[i].JobID)
		if want := wantState(id % 100); st.JobID != refs[i].JobID || st.State != want {
			b.Fatalf("job %s: got %s %q (%s), want %s", refs[i].JobID, st.JobID, st.State, st.Reason, want)
		}
	}
}

// memTransport is a cluster.Transport that plays a Slurm cluster holding the
// jobs above: it answers the Slurm dialect's squeue, sacct/scontrol and
// exit-code-file commands for the ids and folders named in each command, as
// the real commands would (see the captures in plugins/slurm/testdata). An
// answer is built once per distinct command and then served from memory, so a
// benchmark's steady state measures the scheduler's side only. It moves no files.
type memTransport struct {
	runsFile string
	runs     atomic.Int64

	mu      sync.Mutex
	answers map[string]cluster.RunResult
}

var _ cluster.Transport = (*memTransport)(nil)

var errMemTransport = plugins.Errorf(plugins.KindPermanent, "the in-memory benchmark transport moves no files")

func (m *memTransport) Run(_ context.Context, cmd string) (cluster.RunResult, error) {
	m.runs.Add(1)
	if m.runsFile != "" {
		f, err := os.OpenFile(m.runsFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return cluster.RunResult{}, fmt.Errorf("count run: %w", err)
		}
		_, err = f.Write([]byte{'r'})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return cluster.RunResult{}, fmt.Errorf("count run: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.answers[cmd]; ok {
		return r, nil
	}
	r, err := answer(cmd)
	if err != nil {
		return cluster.RunResult{}, err
	}
	if m.answers == nil {
		m.answers = map[string]cluster.RunResult{}
	}
	m.answers[cmd] = r
	return r, nil
}

// answer is what the fake cluster prints for cmd.
func answer(cmd string) (cluster.RunResult, error) {
	var out strings.Builder
	switch {
	case strings.Contains(cmd, " squeue "):
		ids, err := idsAfter(cmd, "--jobs=", " ")
		if err != nil {
			return cluster.RunResult{}, err
		}
		for _, id := range ids {
			if l := squeueLine(id % 100); l != "" {
				out.WriteString(strconv.Itoa(id) + l)
			}
		}
	case strings.Contains(cmd, "S=$(sacct "):
		ids, err := idsAfter(cmd, " -j ", " ")
		if err != nil {
			return cluster.RunResult{}, err
		}
		out.WriteString("@@hpcbot-sacct 0\n")
		var missing []int
		for _, id := range ids {
			if l := sacctLine(id % 100); l != "" {
				out.WriteString(strconv.Itoa(id) + l)
			} else {
				missing = append(missing, id)
			}
		}
		out.WriteString("@@hpcbot-scontrol\n")
		if len(missing) <= 20 { // scontrol asked one by one; above 20, one listing filtered by awk prints nothing
			for range missing {
				out.WriteString("slurm_load_jobs error: Invalid job id specified\n")
			}
		}
		out.WriteString("@@hpcbot-end\n")
	case strings.HasPrefix(cmd, "f() {"):
		for line := range strings.Lines(cmd) {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "f" {
				continue
			}
			dir := strings.Trim(f[2], "'")
			id, err := strconv.Atoi(strings.TrimPrefix(path.Base(dir), "f"))
			if err != nil {
				return cluster.RunResult{}, fmt.Errorf("memory transport: folder %q", dir)
			}
			out.WriteString("\n@@hpcbot-exit " + f[1] + "\n")
			if id%100 == 0 {
				out.WriteString("0 1795709496\n")
			}
		}
	default:
		return cluster.RunResult{}, plugins.Errorf(plugins.KindPermanent, "memory transport: unexpected command %.80q", cmd)
	}
	return cluster.RunResult{Stdout: []byte(out.String())}, nil
}

// idsAfter reads the comma-separated job ids in cmd between start and end.
func idsAfter(cmd, start, end string) ([]int, error) {
	_, rest, ok := strings.Cut(cmd, start)
	if !ok {
		return nil, fmt.Errorf("memory transport: no %q in command", start)
	}
	list, _, _ := strings.Cut(rest, end)
	var ids []int
	for s := range strings.SplitSeq(list, ",") {
		id, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("memory transport: job id %q: %w", s, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (*memTransport) PutDir(context.Context, string, string) error { return errMemTransport }
func (*memTransport) WriteFile(context.Context, string, []byte, fs.FileMode) error {
	return errMemTransport
}
func (*memTransport) List(context.Context, string) ([]cluster.RemoteFile, error) {
	return nil, errMemTransport
}
func (*memTransport) Get(context.Context, string, string, string, int64) (int64, error) {
	return 0, errMemTransport
}
func (*memTransport) RemoveAll(context.Context, string) error { return errMemTransport }
func (*memTransport) Close() error                            { return nil }

var memCluster = plugins.Cluster{Label: "mem", Scheduler: "memslurm", UploadPath: "hpcbot-bench"}

// BenchmarkPoll10kInProcess is one Poll of 10,000 jobs through cluster.Scheduler
// with the Slurm dialect, in this process: building the three commands, parsing
// squeue's 9,000 lines, sacct's 1,100 and 100 exit-code files, and merging.
// runs/op counts the transport's Run calls (round trips to the cluster).
func BenchmarkPoll10kInProcess(b *testing.B) {
	tr := &memTransport{}
	s := cluster.New(slurm.NewDialect(), func(plugins.Cluster) (cluster.Transport, error) {
		return tr, nil
	}, cluster.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	if err := s.Configure(ctx, memCluster); err != nil {
		b.Fatal(err)
	}
	refs := pollRefs()
	got, err := s.Poll(ctx, refs) // builds the fake cluster's answers
	if err != nil {
		b.Fatal(err)
	}
	checkPoll(b, refs, got)
	before := tr.runs.Load()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if got, err = s.Poll(ctx, refs); err != nil {
			b.Fatal(err)
		}
		n++
	}
	checkPoll(b, refs, got)
	b.ReportMetric(float64(tr.runs.Load()-before)/float64(n), "runs/op")
}

// BenchmarkPoll10kPlugin is the same Poll through the plugin boundary: the
// host's gRPC client → a plugin process (this test binary, started by
// plugins.Host as the drop-in hpcbot-scheduler-memslurm) → cluster.Scheduler
// with the Slurm dialect → memTransport. ns/op is the host's wall time;
// B/op and allocs/op are the host process's only; plugin-cpu-ms/op is the
// plugin process's user+system CPU (from /proc); runs/op as above.
func BenchmarkPoll10kPlugin(b *testing.B) {
	dir := b.TempDir()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(dir, "hpcbot-scheduler-memslurm")); err != nil {
		b.Fatal(err)
	}
	runs := filepath.Join(dir, "runs")
	b.Setenv(envMemSlurm, runs)
	host, err := plugins.NewHost(plugins.HostOptions{
		PluginDir:  dir,
		Executable: binary,
		Builtins:   builtins,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	ctx := context.Background()
	s, err := host.Scheduler(ctx, memCluster)
	if err != nil {
		b.Fatal(err)
	}
	refs := pollRefs()
	got, err := s.Poll(ctx, refs)
	if err != nil {
		b.Fatal(err)
	}
	checkPoll(b, refs, got)
	pid := host.Plugins()[0].PID
	runsBefore, cpuBefore := fileSize(b, runs), procCPU(b, pid)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if got, err = s.Poll(ctx, refs); err != nil {
			b.Fatal(err)
		}
		n++
	}
	runsAfter, cpuAfter := fileSize(b, runs), procCPU(b, pid)
	checkPoll(b, refs, got)
	if p := host.Plugins()[0]; p.PID != pid {
		b.Fatalf("the plugin process was restarted during the benchmark: %+v", p)
	}
	b.ReportMetric(float64(runsAfter-runsBefore)/float64(n), "runs/op")
	b.ReportMetric(float64(cpuAfter-cpuBefore)/float64(time.Millisecond)/float64(n), "plugin-cpu-ms/op")
}

func fileSize(b *testing.B, name string) int64 {
	b.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// procCPU is the user+system CPU time of process pid, from /proc/<pid>/stat
// (fields 14 and 15, in clock ticks of 1/100 s, the value on every Linux port
// Go supports).
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("plugin CPU time needs /proc: %v", err)
	}
	i := bytes.LastIndexByte(raw, ')')
	f := strings.Fields(string(raw[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// Submit benchmarks: the same small job submitted to the test bed's Slurm
// (a) by the slurm plugin (Stage a one-file folder by SFTP, then Submit: one
// command that writes the batch script and runs sbatch inside the at-most-once wrapper),
// on a connection kept warm by the plugin process, and (b) by `ssh` running
// mkdir, cat > script and sbatch, with a new connection per submit and over
// an OpenSSH ControlMaster. Run together, with few iterations:
//
//	go test -run '^$' -bench 'Submit' -benchtime=20x .
//
// Every job is named hpcbench-<run>, and the jobs and folders are removed at the end.

// benchRun names this run's jobs and folders.
var benchRun = strconv.FormatInt(time.Now().UnixNano(), 36)

func benchJobName(variant string) string { return "hpcbench-" + benchRun + "-" + variant }

func benchUpload(variant string) string { return "hpcbot-bench/" + benchRun + "-" + variant }

// sshArgs are the ssh(1) options for the test bed, ignoring the user's own configuration.
func sshArgs(env testbed.SSHEnv, extra ...string) []string {
	args := []string{"-F", "/dev/null", "-i", env.KeyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + env.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "HostKeyAlgorithms=ssh-ed25519", "-p", strconv.Itoa(env.Port)}
	args = append(args, extra...)
	return append(args, env.User+"@"+env.Host)
}

// cleanupSubmits cancels the variant's jobs and removes its folders.
func cleanupSubmits(b *testing.B, env testbed.SSHEnv, variant string) {
	b.Cleanup(func() {
		cmd := "scancel --name=" + shellquote.Quote(benchJobName(variant)) + "; rm -rf " + shellquote.Quote(benchUpload(variant)) + "; rmdir hpcbot-bench 2>/dev/null; true"
		if out, err := exec.Command("ssh", append(sshArgs(env), cmd)...).CombinedOutput(); err != nil {
			b.Errorf("cleanup of the %s jobs: %v: %s", variant, err, out)
		}
	})
}

// benchInput is the calculation's one input file; the job prints it.
const benchInput = "H 0 0 0\nH 0 0 0.74\n"

func submitRequest(i int, variant string) plugins.SubmitRequest {
	return plugins.SubmitRequest{
		CalcID: uint64(i), Folder: "c" + strconv.Itoa(i), Argv: []string{"cat", "in.txt"},
		Launch: plugins.LaunchBatch, JobName: benchJobName(variant), Comment: "hpcbot benchmark",
	}
}

// submitFixture is a local calculation folder with one input file.
func submitFixture(b *testing.B) string {
	b.Helper()
	local := b.TempDir()
	if err := os.WriteFile(filepath.Join(local, "in.txt"), []byte(benchInput), 0o644); err != nil {
		b.Fatal(err)
	}
	return local
}

// warm connects s (Check), so that what follows runs on a warm connection.
func warm(b *testing.B, s plugins.Scheduler) {
	b.Helper()
	if _, err := s.Check(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// stageSubmit stages local as calculation i and submits it through s.
func stageSubmit(b *testing.B, s plugins.Scheduler, local string, i int, variant string) (stage, submit time.Duration) {
	b.Helper()
	ctx := context.Background()
	req := submitRequest(i, variant)
	t0 := time.Now()
	if err := s.Stage(ctx, plugins.StageRequest{CalcID: req.CalcID, LocalDir: local, Folder: req.Folder}); err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	res, err := s.Submit(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	t2 := time.Now()
	if res.JobID == "" || res.Existing {
		b.Fatalf("submit %d: %+v", i, res)
	}
	return t1.Sub(t0), t2.Sub(t1)
}

// benchSubmit stages and submits one calculation per op through s.
func benchSubmit(b *testing.B, s plugins.Scheduler, variant string) {
	warm(b, s)
	local := submitFixture(b)
	i := 0
	var staging, submitting time.Duration
	for b.Loop() {
		i++
		st, su := stageSubmit(b, s, local, i, variant)
		staging, submitting = staging+st, submitting+su
	}
	b.ReportMetric(ms(staging)/float64(i), "stage-ms/op")
	b.ReportMetric(ms(submitting)/float64(i), "submit-ms/op")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pluginScheduler starts the slurm plugin for the test bed through a plugin host,
// the plugin served by the hpcbot binary in a process of its own.
func pluginScheduler(b *testing.B, env testbed.SSHEnv, variant string) plugins.Scheduler {
	return pluginSchedulerOf(b, binary, env, variant)
}

// pluginSchedulerOf is pluginScheduler with the plugin served by the hpcbot binary exe.
func pluginSchedulerOf(b *testing.B, exe string, env testbed.SSHEnv, variant string) plugins.Scheduler {
	b.Helper()
	host, err := plugins.NewHost(plugins.HostOptions{Executable: exe, Builtins: builtins, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { host.Close() })
	s, err := host.Scheduler(context.Background(), bedCluster(env, variant))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSubmitSlurmPlugin: Stage + Submit through the plugin host, the slurm
// plugin in its own process, over sshc.
func BenchmarkSubmitSlurmPlugin(b *testing.B) {
	env := testbed.Slurm(b)
	const variant = "plugin"
	cleanupSubmits(b, env, variant)
	benchSubmit(b, pluginScheduler(b, env, variant), variant)
}

// BenchmarkSubmitSlurmInProcess: the same with the slurm plugin's Scheduler in
// this process, no plugin boundary, so the difference to
// BenchmarkSubmitSlurmPlugin is the gRPC hop.
func BenchmarkSubmitSlurmInProcess(b *testing.B) {
	env := testbed.Slurm(b)
	const variant = "inproc"
	cleanupSubmits(b, env, variant)
	quiet := slog.New(slog.DiscardHandler)
	s := cluster.New(slurm.NewDialect(), func(c plugins.Cluster) (cluster.Transport, error) {
		return sshc.New(c.Connection, sshc.Options{Logger: quiet}) // sshc.Transport, without the log lines
	}, cluster.WithLogger(quiet))
	b.Cleanup(func() { s.Close() })
	if err := s.Configure(context.Background(), bedCluster(env, variant)); err != nil {
		b.Fatal(err)
	}
	benchSubmit(b, s, variant)
}

func bedCluster(env testbed.SSHEnv, variant string) plugins.Cluster {
	return plugins.Cluster{Label: "bench-" + variant, Scheduler: "slurm", UploadPath: benchUpload(variant),
		Connection: plugins.Connection{Host: env.Host, Port: env.Port, User: env.User, KeyPath: env.KeyPath, KnownHosts: env.KnownHosts}}
}

// BenchmarkSubmitRawSSH submits the same batch script (the slurm dialect's, for
// the same request) with one ssh(1) command per op: mkdir, cat > script (the
// script on stdin), cd, printf > in.txt (the input file the plugin stages) and
// sbatch --parsable. new-connection does a full SSH handshake per op;
// controlmaster reuses an OpenSSH master connection, the fair comparison with
// the plugin's warm connection. Unlike Submit, it does not guard against a
// double submit (no lock folder, no saved output).
func BenchmarkSubmitRawSSH(b *testing.B) {
	env := testbed.Slurm(b)
	b.Run("new-connection", func(b *testing.B) {
		benchRawSubmit(b, env, "raw", nil)
	})
	b.Run("controlmaster", func(b *testing.B) {
		benchRawSubmit(b, env, "rawcm", controlMaster(b, env))
	})
}

// BenchmarkSubmitInterleaved alternates the two warm variants in one loop, one
// plugin Stage+Submit and one raw ssh+sbatch over a ControlMaster per op, so that
// both see the same load on a shared machine. It reports each one's median and the
// median and 95th percentile of the per-op difference (plugin minus raw): the
// bot's overhead over raw ssh + sbatch on a warm connection.
//
// With HPCBOT_BENCH_BASELINE set to another hpcbot binary (an older commit's,
// say), each op also stages and submits through that binary's slurm plugin, so
// a change is measured against its baseline under the same load; the three go
// in a rotating order, and baseline-* are that plugin's median and overhead.
func BenchmarkSubmitInterleaved(b *testing.B) {
	env := testbed.Slurm(b)
	cleanupSubmits(b, env, "ilplugin")
	cleanupSubmits(b, env, "ilraw")
	s := pluginScheduler(b, env, "ilplugin")
	warm(b, s)
	var base plugins.Scheduler
	if exe := os.Getenv("HPCBOT_BENCH_BASELINE"); exe != "" {
		cleanupSubmits(b, env, "ilbase")
		base = pluginSchedulerOf(b, exe, env, "ilbase")
		warm(b, base)
	}
	cm := controlMaster(b, env)
	local := submitFixture(b)
	var plugin, stages, submits, raw, diff, baseline, baseStages, baseSubmits, baseDiff []float64
	i := 0
	for b.Loop() {
		i++
		var st, su, r, bst, bsu time.Duration
		steps := []func(){
			func() { st, su = stageSubmit(b, s, local, i, "ilplugin") },
			func() { r = rawSubmit(b, env, cm, i, "ilraw") },
		}
		if base != nil {
			steps = append(steps, func() { bst, bsu = stageSubmit(b, base, local, i, "ilbase") })
		}
		for k := range steps { // rotate which goes first
			steps[(i+k)%len(steps)]()
		}
		plugin, raw, diff = append(plugin, ms(st+su)), append(raw, ms(r)), append(diff, ms(st+su-r))
		stages, submits = append(stages, ms(st)), append(submits, ms(su))
		if base != nil {
			baseline, baseDiff = append(baseline, ms(bst+bsu)), append(baseDiff, ms(bst+bsu-r))
			baseStages, baseSubmits = append(baseStages, ms(bst)), append(baseSubmits, ms(bsu))
		}
	}
	b.ReportMetric(quantile(plugin, 0.5), "plugin-p50-ms")
	b.ReportMetric(quantile(stages, 0.5), "stage-p50-ms")
	b.ReportMetric(quantile(submits, 0.5), "submit-p50-ms")
	b.ReportMetric(quantile(plugin, 0.95), "plugin-p95-ms")
	b.ReportMetric(quantile(raw, 0.5), "raw-p50-ms")
	b.ReportMetric(quantile(raw, 0.95), "raw-p95-ms")
	b.ReportMetric(quantile(diff, 0.5), "overhead-p50-ms")
	b.ReportMetric(quantile(diff, 0.95), "overhead-p95-ms")
	b.ReportMetric(quantile(diff, 0.05), "overhead-p05-ms") // a slow raw submit: how far noise reaches the other way
	if base != nil {
		b.ReportMetric(quantile(baseline, 0.5), "baseline-p50-ms")
		b.ReportMetric(quantile(baseline, 0.95), "baseline-p95-ms")
		b.ReportMetric(quantile(baseStages, 0.5), "baseline-stage-p50-ms")
		b.ReportMetric(quantile(baseSubmits, 0.5), "baseline-submit-p50-ms")
		b.ReportMetric(quantile(baseDiff, 0.5), "baseline-overhead-p50-ms")
		b.ReportMetric(quantile(baseDiff, 0.95), "baseline-overhead-p95-ms")
		b.ReportMetric(quantile(baseDiff, 0.05), "baseline-overhead-p05-ms")
	}
}

// quantile is the q-quantile of v, interpolating between the nearest ranks.
func quantile(v []float64, q float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	pos := q * float64(len(v)-1)
	lo := int(pos)
	if lo+1 >= len(v) {
		return v[len(v)-1]
	}
	return v[lo] + (pos-float64(lo))*(v[lo+1]-v[lo])
}

// controlMaster starts an OpenSSH master connection to the bed and returns the
// ssh options that use it; it is stopped when b ends.
func controlMaster(b *testing.B, env testbed.SSHEnv) []string {
	b.Helper()
	dir, err := os.MkdirTemp("", "cm") // short: a socket path has at most 104 bytes
	if err != nil {
		b.Fatal(err)
	}
	cm := []string{"-o", "ControlPath=" + filepath.Join(dir, "s"), "-o", "ControlMaster=auto", "-o", "ControlPersist=300"}
	b.Cleanup(func() {
		exec.Command("ssh", sshArgs(env, slices.Concat(cm, []string{"-O", "exit"})...)...).Run()
		os.RemoveAll(dir)
	})
	// Start the master (stdio to /dev/null: the persisting master keeps its fds).
	if err := exec.Command("ssh", append(sshArgs(env, cm...), "true")...).Run(); err != nil {
		b.Fatalf("start the ssh master: %v", err)
	}
	return cm
}

func benchRawSubmit(b *testing.B, env testbed.SSHEnv, variant string, extra []string) {
	cleanupSubmits(b, env, variant)
	i := 0
	for b.Loop() {
		i++
		rawSubmit(b, env, extra, i, variant)
	}
}

// rawSubmit submits calculation i with one ssh(1) command and returns its wall time.
func rawSubmit(b *testing.B, env testbed.SSHEnv, extra []string, i int, variant string) time.Duration {
	b.Helper()
	req := submitRequest(i, variant)
	dir := benchUpload(variant) + "/" + req.Folder
	script, err := slurm.NewDialect().BatchScript(req, dir)
	if err != nil {
		b.Fatal(err)
	}
	q := shellquote.Quote(dir)
	remote := "mkdir -p " + q + " && cat >" + q + "/job.sh && cd " + q +
		" && printf %s " + shellquote.Quote(benchInput) + " >in.txt && sbatch --parsable job.sh"
	cmd := exec.Command("ssh", append(sshArgs(env, extra...), remote)...)
	cmd.Stdin = bytes.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	d := time.Since(t0)
	if err != nil {
		b.Fatalf("submit %d: %v: %s", i, err, stderr.Bytes())
	}
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
	if _, err := strconv.Atoi(id); err != nil {
		b.Fatalf("submit %d: sbatch printed %q", i, out)
	}
	return d
}

// BenchmarkRunRSS measures the resident memory of `hpcbot run` (the built
// binary) with a store of 10,000 calculations: 9,900 notified over the last 20
// days (each went the whole way: job id, exit code, result files, share link,
// eight transitions) and 100 the daemon stages and submits itself to a `local`
// cluster at start, whose jobs then stay running (each blocks reading a FIFO
// until the benchmark ends). The daemon talks to the fake Bot API (bot/tgtest).
// Once it has sent the 100 "accepted" messages it is given two more poll
// cycles (fetch_time = 5 s) to settle; then VmRSS (and its anonymous and
// file-backed parts: the store file is mapped) and VmHWM of hpcbot, and the
// sum of VmRSS of its plugin processes (the local scheduler and the command
// runner, each a process of the same binary), are read from
// /proc/<pid>/status, and their anonymous parts and proportional set sizes
// (Pss, /proc/<pid>/smaps_rollup: pages shared with other processes, such as
// the binary's, divided among them) separately. The sub-benchmark "empty" is
// the same daemon with an empty store, for scale; "10k-3clusters" has two more
// idle `local` clusters with the same runner rules (three scheduler
// processes, and the runner processes the host starts for three clusters).
// Each op starts a fresh daemon; run it with -benchtime=1x (about a minute
// each; the 9,900 notified calculations are written once per schema into the
// system's temp folder and copied).
func BenchmarkRunRSS(b *testing.B) {
	b.Run("empty", func(b *testing.B) { benchRunRSS(b, 0, 0, 1) })
	b.Run("10k", func(b *testing.B) { benchRunRSS(b, 9_900, 100, 1) })
	b.Run("10k-3clusters", func(b *testing.B) { benchRunRSS(b, 9_900, 100, 3) })
}

func benchRunRSS(b *testing.B, notified, active, clusters int) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skipf("needs /proc: %v", err)
	}
	const fetch = 5 * time.Second
	var rss, anon, file, hwm, pss, plug, plugAnon, plugPss, nplug, storeSize float64
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		tg := tgtest.New(b)
		dbPath := filepath.Join(dir, "hpcbot.db")
		if notified > 0 {
			copyStore(b, seedNotified(b, notified), dbPath)
		}
		fifo := filepath.Join(dir, "release")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			b.Fatal(err)
		}
		upload := filepath.Join(dir, "work")
		folders := seedReceived(b, dbPath, filepath.Join(dir, "downloads"), active,
			"read x < "+shellquote.Quote(fifo)+"\necho released\n")
		cfg := filepath.Join(dir, "hpcbot.toml")
		text := fmt.Sprintf(`
download_path = %q
fetch_time = %d
[store]
path = %q
[bot]
token = %q
api_url = %q
[[clusters]]
label = "here"
scheduler = "local"
upload_path = %q
max_jobs = %d
allow_same_user = true
[[clusters.runners]]
program = "sh"
allowed_args = ["{}"]
associations = [".sh"]
`, filepath.Join(dir, "downloads"), int(fetch.Seconds()), dbPath, tg.Token, tg.URL, upload, max(active, 1))
		for i := 2; i <= clusters; i++ {
			text += fmt.Sprintf(`
[[clusters]]
label = "idle%d"
scheduler = "local"
upload_path = %q
max_jobs = 1
allow_same_user = true
[[clusters.runners]]
program = "sh"
allowed_args = ["{}"]
associations = [".sh"]
`, i, filepath.Join(dir, fmt.Sprintf("work%d", i)))
		}
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(dbPath)
		if err == nil {
			storeSize += float64(fi.Size()) / (1 << 20)
		}
		var logs bytes.Buffer
		cmd := exec.Command(binary, "run", "--config", cfg)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		cmd.Env = benchDaemonEnv()
		b.StartTimer()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		release := func() {
			// A writer opens the FIFO: every job's read returns (a line or
			// EOF) and the jobs end.
			if w, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
				w.Write(bytes.Repeat([]byte("\n"), active+1))
				deadline := time.Now().Add(time.Minute)
				for _, f := range folders {
					for time.Now().Before(deadline) {
						if _, err := os.Stat(filepath.Join(upload, f, cluster.ExitCodeFile)); err == nil || errors.Is(err, fs.ErrNotExist) && !exists(filepath.Join(upload, f)) {
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
				w.Close()
			}
		}
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			release()
		}
		// Idle: every accepted message sent (the plugins' processes are up by then).
		guard := time.Now().Add(5 * time.Minute)
		for len(okCalls(tg.Calls("sendMessage"))) < active || len(tg.Calls("getUpdates")) == 0 {
			select {
			case err := <-exited:
				release()
				b.Fatalf("hpcbot run exited: %v\n%s", err, logs.String())
			default:
			}
			if time.Now().After(guard) {
				stop()
				b.Fatalf("after 5 minutes %d of %d accepted messages were sent\n%s", len(okCalls(tg.Calls("sendMessage"))), active, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * fetch)
		pid := cmd.Process.Pid
		st := procStatus(b, pid)
		rss += st["VmRSS"]
		anon += st["RssAnon"]
		file += st["RssFile"] + st["RssShmem"]
		hwm += st["VmHWM"]
		pss += procPss(b, pid)
		for _, k := range childrenOf(pid) {
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", k)); err == nil && exe == binary {
				kst := procStatus(b, k)
				plug += kst["VmRSS"]
				plugAnon += kst["RssAnon"]
				plugPss += procPss(b, k)
				nplug++
			}
		}
		b.StopTimer()
		stop()
		if n := len(okCalls(tg.Calls("sendMessage"))); n != active {
			b.Fatalf("%d messages sent, want the %d accepted notices only\n%s", n, active, logs.String())
		}
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(rss/n, "rss-MiB")
	b.ReportMetric(anon/n, "rss-anon-MiB")
	b.ReportMetric(file/n, "rss-file-MiB")
	b.ReportMetric(hwm/n, "hwm-MiB")
	b.ReportMetric(pss/n, "pss-MiB")
	b.ReportMetric(plug/n, "plugins-rss-MiB")
	b.ReportMetric(plugAnon/n, "plugins-anon-MiB")
	b.ReportMetric(plugPss/n, "plugins-pss-MiB")
	b.ReportMetric(nplug/n, "plugins")
	b.ReportMetric(storeSize/n, "store-MiB")
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// okCalls keeps the calls the fake Bot API answered with 200.
func okCalls(calls []tgtest.Call) []tgtest.Call {
	var out []tgtest.Call
	for _, c := range calls {
		if c.OK() {
			out = append(out, c)
		}
	}
	return out
}

// benchDaemonEnv is the environment without hpcbot's own variables (a token
// there would win over the config).
func benchDaemonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HPCBOT_") {
			env = append(env, kv)
		}
	}
	return env
}

// procStatus reads the kB fields of /proc/<pid>/status, in MiB.
func procStatus(b *testing.B, pid int) map[string]float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("read status of process %d: %v", pid, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		f := strings.Fields(v)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[k] = kb / 1024
		}
	}
	return out
}

// procPss reads the proportional set size of process pid, in MiB: its pages,
// each shared one divided by the number of processes that map it
// (/proc/<pid>/smaps_rollup, https://docs.kernel.org/filesystems/proc.html).
func procPss(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatalf("read smaps_rollup of process %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "Pss:" && f[2] == "kB" {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				return kb / 1024
			}
		}
	}
	b.Fatalf("no Pss in smaps_rollup of process %d", pid)
	return 0
}

func copyStore(b *testing.B, from, to string) {
	b.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		b.Fatal(err)
	}
}

// benchUsers is how many chemists own the seeded calculations.
const benchUsers = 50

// seedNotified returns a store file with n notified calculations of
// benchUsers registered users, created over the last 20 days, each moved
// through every state with the fields a real one collects. Writing it takes
// 8 transactions per calculation (a minute and more), so it is built once per
// schema version in the system's temp folder.
func seedNotified(b *testing.B, n int) string {
	b.Helper()
	seed := filepath.Join(os.TempDir(), fmt.Sprintf("hpcbot-bench-notified-%d-schema%d.db", n, store.LatestSchema()))
	if exists(seed) {
		return seed
	}
	tmp := seed + fmt.Sprintf(".%d.tmp", os.Getpid())
	st, err := store.Open(tmp, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	users := benchSeedUsers(b, st)
	now := time.Now()
	for i := range n {
		u := users[i%len(users)]
		created := now.Add(-20 * 24 * time.Hour).Add(time.Duration(i) * (20 * 24 * time.Hour / time.Duration(n)))
		folder := fmt.Sprintf("%d_%d_%d_opt%d", created.Unix(), u.ID, 9000+i, i)
		c, err := st.CreateCalculation(store.Calculation{UserID: u.ID, TelegramID: 8000 + int64(u.ID), ChatID: 8000 + int64(u.ID),
			MessageID: 100 + i, UpdateID: int64(500000 + i), InputName: fmt.Sprintf("opt%d.inp", i), Folder: folder,
			LocalDir: "/var/lib/hpcbot/downloads/" + folder, Runner: "orca", Program: "orca",
			Argv: []string{"orca", fmt.Sprintf("opt%d.inp", i)}, Launch: plugins.LaunchBatch,
			Resources: map[string]string{"ntasks": "8", "time": "24:00:00"}, ResultExtensions: []string{".out", ".xyz", ".gbw"},
			Cluster: "here"}, time.Hour, created)
		if err != nil {
			b.Fatal(err)
		}
		code := i % 7 / 6 // one in seven failed
		for _, to := range []store.State{store.StateStaged, store.StateSubmitted, store.StateRunning, store.StateSucceeded,
			store.StateRetrieved, store.StateDelivered, store.StateNotified} {
			if to == store.StateSucceeded && code != 0 {
				to = store.StateFailed
			}
			if _, err := st.Transition(c.ID, to, "job "+strconv.Itoa(700000+i), func(_ *store.Tx, c *store.Calculation) error {
				c.JobID, c.RawState = strconv.Itoa(700000+i), "COMPLETED"
				switch to {
				case store.StateSucceeded, store.StateFailed:
					c.ExitCode = &code
					c.Progress = store.Progress{Accepted: true, Started: created.UTC(), Ended: created.Add(3 * time.Hour).UTC()}
				case store.StateRetrieved:
					c.Progress.Files = []string{fmt.Sprintf("opt%d.out", i), fmt.Sprintf("opt%d.xyz", i), fmt.Sprintf("opt%d.gbw", i),
						fmt.Sprintf("slurm-%d.out", 700000+i)}
				case store.StateDelivered:
					c.ShareLink = fmt.Sprintf("https://cloud.example.org/s/%016x", uint64(i)*0x9e3779b97f4a7c15)
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, seed); err != nil {
		b.Fatal(err)
	}
	return seed
}

// benchSeedUsers registers benchUsers approved users (Telegram ids 8000+id)
// and returns them.
func benchSeedUsers(b *testing.B, st *store.Store) []store.User {
	b.Helper()
	var users []store.User
	for i := range benchUsers {
		u, _, err := st.RegisterUser(store.TelegramAccount{TelegramID: 8001 + int64(i), Username: fmt.Sprintf("chem%d", i),
			DisplayName: fmt.Sprintf("Chemist %d", i), LanguageCode: "en"}, 1<<30)
		if err != nil {
			b.Fatal(err)
		}
		if u, err = st.UpdateUser(u.ID, func(_ *store.Tx, x *store.User) error { x.Approved = true; return nil }); err != nil {
			b.Fatal(err)
		}
		users = append(users, u)
	}
	return users
}

// seedReceived adds n calculations in received, as the bot leaves them after
// downloading an input: job<i>.sh with body in downloads/<folder>/, planned by
// the command runner for sh. It returns their folders.
func seedReceived(b *testing.B, dbPath, downloads string, n int, body string) []string {
	b.Helper()
	st, err := store.Open(dbPath, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	users, err := st.Users()
	if err != nil {
		b.Fatal(err)
	}
	if len(users) == 0 && n > 0 {
		users = benchSeedUsers(b, st)
	}
	r := command.New()
	if err := r.Configure(context.Background(), "here", []plugins.RunnerRule{{Runner: "command", Program: "sh",
		AllowedArgs: []string{"{}"}, Associations: []string{".sh"}}}); err != nil {
		b.Fatal(err)
	}
	var folders []string
	now := time.Now()
	for i := range n {
		u := users[i%len(users)]
		name := fmt.Sprintf("job%d.sh", i)
		plan, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: name})
		if err != nil {
			b.Fatal(err)
		}
		folder := fmt.Sprintf("%d_%d_%d_job%d", now.Unix(), u.ID, 900000+i, i)
		local := filepath.Join(downloads, folder)
		if err := os.MkdirAll(local, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(local, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
		if _, err := st.CreateCalculation(store.Calculation{UserID: u.ID, TelegramID: 8000 + int64(u.ID), ChatID: 8000 + int64(u.ID),
			UpdateID: int64(900000 + i), InputName: name, Folder: folder, LocalDir: local, Runner: "command",
			Program: plan.Program, Argv: plan.Argv, Launch: plan.Launch, Cluster: "here"}, time.Hour, now); err != nil {
			b.Fatal(err)
		}
		folders = append(folders, folder)
	}
	return folders
}

// BenchmarkJobEndToMessageSlurm is scheduler's BenchmarkJobEndToMessage with
// the test bed's Slurm: the whole scheduler in this process, the slurm plugin
// in its own process through a plugin host over SSH, fetch_time = 5 s, a
// recording Notifier. b.N jobs of `sleep` for 2 s … 7 s (evenly spread) are
// woken at once; their submission takes well under their shortest sleep, so
// the ends do not overlap the intake. A job's end is its exit-code file's
// modification time on the bed (stat over SSH, nanoseconds; the bed shares
// this machine's clock), and the message time is when EventFinished reached
// the Notifier: results fetched over SFTP and prepared as documents. The
// metrics are the distribution over the b.N jobs, in seconds. Run it with
// -benchtime=Nx; it takes about 15 s plus the time Slurm needs to run the jobs
// on the bed's node.
func BenchmarkJobEndToMessageSlurm(b *testing.B) {
	env := testbed.Slurm(b)
	const fetch = 5 * time.Second
	const variant = "end"
	cleanupSubmits(b, env, variant)
	cl := bedCluster(env, variant)
	st, err := store.Open(filepath.Join(b.TempDir(), "hpcbot.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	u, err := st.CreateUser(store.User{Limit: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	rules := []plugins.RunnerRule{{Runner: "command", Program: "sh", AllowedArgs: []string{"{}"}, Associations: []string{".sh"}}}
	r := command.New()
	if err := r.Configure(context.Background(), cl.Label, rules); err != nil {
		b.Fatal(err)
	}
	cfg := scheduler.Config{DownloadPath: b.TempDir(), FetchTime: scheduler.FetchTime{Min: fetch, Max: fetch},
		Clusters: []scheduler.ClusterConfig{{Cluster: cl, Runners: rules}}}
	clock := &endClock{at: map[uint64]time.Time{}, got: make(chan uint64, b.N)}
	s, err := scheduler.New(cfg, st, map[string]plugins.Scheduler{cl.Label: pluginScheduler(b, env, variant)},
		map[string][]plugins.Runner{cl.Label: {r}}, clock, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	calcs := make([]store.Calculation, b.N)
	for i := range b.N {
		name := fmt.Sprintf("end%d.sh", i)
		route, err := s.Route(ctx, name, "")
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		folder := fmt.Sprintf("%s_%d", scheduler.FolderName(u.ID, int64(i+1), name, now), now.UnixNano()%1e9)
		c, err := st.CreateCalculation(store.Calculation{UserID: u.ID, InputName: name, Folder: folder,
			LocalDir: s.LocalDir(folder), Runner: route.Runner, Program: route.Plan.Program, Argv: route.Plan.Argv,
			Launch: route.Plan.Launch, Cluster: route.Cluster}, time.Hour, now)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(c.LocalDir, 0o755); err != nil {
			b.Fatal(err)
		}
		body := fmt.Sprintf("sleep %.3f; echo done\n", 2+5*float64(i)/float64(max(b.N-1, 1)))
		if err := os.WriteFile(filepath.Join(c.LocalDir, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
		calcs[i] = c
	}
	b.ResetTimer()
	for _, c := range calcs {
		s.Wake(c.ID)
	}
	timeout := time.After(10 * time.Minute)
	for i := range b.N {
		select {
		case <-clock.got:
		case <-timeout:
			b.Fatalf("%d of %d jobs finished within 10 minutes", i, b.N)
		}
	}
	b.StopTimer()
	// The exit-code files' times, in one command.
	var cmd strings.Builder
	cmd.WriteString("stat -c '%.9Y'")
	for _, c := range calcs {
		cmd.WriteString(" " + shellquote.Quote(path.Join(cl.UploadPath, c.Folder, cluster.ExitCodeFile)))
	}
	ssh := env.Dial(b)
	defer ssh.Close()
	out, err := testbed.Output(ssh, cmd.String())
	if err != nil {
		b.Fatalf("stat the exit-code files: %v: %s", err, out)
	}
	lines := strings.Fields(out)
	if len(lines) != b.N {
		b.Fatalf("stat gave %d times for %d jobs: %q", len(lines), b.N, out)
	}
	lat := make([]float64, 0, b.N)
	for i, c := range calcs {
		end, err := strconv.ParseFloat(lines[i], 64)
		if err != nil {
			b.Fatalf("exit-code file time %q: %v", lines[i], err)
		}
		clock.mu.Lock()
		at := clock.at[c.ID]
		clock.mu.Unlock()
		lat = append(lat, float64(at.UnixNano())/1e9-end)
	}
	slices.Sort(lat)
	b.ReportMetric(lat[0], "min-s")
	b.ReportMetric(quantile(lat, 0.5), "p50-s")
	b.ReportMetric(quantile(lat, 0.95), "p95-s")
	b.ReportMetric(lat[len(lat)-1], "max-s")
}

// endClock is a Notifier that records when EventFinished of each calculation arrived.
type endClock struct {
	mu  sync.Mutex
	at  map[uint64]time.Time
	got chan uint64
}

func (e *endClock) Notify(_ context.Context, n scheduler.Notification) error {
	if n.Event != scheduler.EventFinished {
		return nil
	}
	e.mu.Lock()
	_, seen := e.at[n.Calc.ID]
	if !seen {
		e.at[n.Calc.ID] = time.Now()
	}
	e.mu.Unlock()
	if !seen {
		e.got <- n.Calc.ID
	}
	return nil
}
