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
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
	"hpcbot/plugins/slurm"
	"hpcbot/plugins/sshc"
	"hpcbot/plugins/testbed"
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
func (*memTransport) Get(context.Context, string, string) error { return errMemTransport }
func (*memTransport) RemoveAll(context.Context, string) error   { return errMemTransport }
func (*memTransport) Close() error                              { return nil }

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
// (a) by the slurm plugin (Stage a one-file folder, then Submit: SFTP writes of
// the input and the batch script, then sbatch inside the at-most-once wrapper),
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
	b.Helper()
	host, err := plugins.NewHost(plugins.HostOptions{Executable: binary, Builtins: builtins, Logger: slog.New(slog.DiscardHandler)})
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
		return sshc.New(c.Connection, sshc.Options{Logger: quiet}) // slurm.SSHTransport, without the log lines
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
func BenchmarkSubmitInterleaved(b *testing.B) {
	env := testbed.Slurm(b)
	cleanupSubmits(b, env, "ilplugin")
	cleanupSubmits(b, env, "ilraw")
	s := pluginScheduler(b, env, "ilplugin")
	warm(b, s)
	cm := controlMaster(b, env)
	local := submitFixture(b)
	var plugin, raw, diff []float64
	i := 0
	for b.Loop() {
		i++
		var p, r time.Duration
		if i%2 == 0 { // alternate which goes first
			st, su := stageSubmit(b, s, local, i, "ilplugin")
			p, r = st+su, rawSubmit(b, env, cm, i, "ilraw")
		} else {
			r = rawSubmit(b, env, cm, i, "ilraw")
			st, su := stageSubmit(b, s, local, i, "ilplugin")
			p = st + su
		}
		plugin, raw, diff = append(plugin, ms(p)), append(raw, ms(r)), append(diff, ms(p-r))
	}
	b.ReportMetric(quantile(plugin, 0.5), "plugin-p50-ms")
	b.ReportMetric(quantile(raw, 0.5), "raw-p50-ms")
	b.ReportMetric(quantile(diff, 0.5), "overhead-p50-ms")
	b.ReportMetric(quantile(diff, 0.95), "overhead-p95-ms")
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
