package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/detached"
	"hpcbot/plugins/shellquote"
	"hpcbot/runners/command"
	"hpcbot/store"
)

// timed is a plugins.Scheduler that measures the time spent inside Stage and
// Submit, the raw launch cost the intake benchmark subtracts.
type timed struct {
	plugins.Scheduler
	mu     sync.Mutex
	inside time.Duration
}

func (t *timed) add(d time.Duration) { t.mu.Lock(); t.inside += d; t.mu.Unlock() }

func (t *timed) Stage(ctx context.Context, req plugins.StageRequest) error {
	start := time.Now()
	defer func() { t.add(time.Since(start)) }()
	return t.Scheduler.Stage(ctx, req)
}

func (t *timed) Submit(ctx context.Context, req plugins.SubmitRequest) (plugins.SubmitResult, error) {
	start := time.Now()
	defer func() { t.add(time.Since(start)) }()
	return t.Scheduler.Submit(ctx, req)
}

// acceptedSignal is a Notifier that signals every EventAccepted.
type acceptedSignal struct{ ch chan uint64 }

func (a acceptedSignal) Notify(_ context.Context, n Notification) error {
	if n.Event == EventAccepted {
		a.ch <- n.Calc.ID
	}
	return nil
}

// BenchmarkIntake measures Wake → job id committed (EventAccepted) with the local
// plugin, and reports the scheduler's own share: the total less the time spent
// inside the plugin's Stage and Submit (the raw launch).
func BenchmarkIntake(b *testing.B) {
	st, err := store.Open(filepath.Join(b.TempDir(), "hpcbot.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	u, _ := st.CreateUser(store.User{Limit: 1 << 30})
	upload := b.TempDir()
	tm := &timed{Scheduler: newLocalForBench(b, "loc", upload)}
	cfg := Config{DownloadPath: b.TempDir(), FetchTime: FetchTime{Min: time.Hour, Max: time.Hour},
		Clusters: []ClusterConfig{{Cluster: plugins.Cluster{Label: "loc", Scheduler: "local", UploadPath: upload, MaxJobs: 1000}, Runners: shRules}}}
	sig := acceptedSignal{ch: make(chan uint64, 1)}
	s, err := New(cfg, st, map[string]plugins.Scheduler{"loc": tm}, map[string][]plugins.Runner{"loc": {newShRunner(b, "loc")}}, sig, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		c := createForBench(b, s, st, u.ID, fmt.Sprintf("j%d.sh", i), "true")
		b.StartTimer()
		start := time.Now()
		s.Wake(c.ID)
		if id := <-sig.ch; id != c.ID {
			b.Fatalf("accepted %d, want %d", id, c.ID)
		}
		total += time.Since(start)
	}
	tm.mu.Lock()
	inside := tm.inside
	tm.mu.Unlock()
	n := float64(b.N)
	b.ReportMetric(float64(total.Microseconds())/n/1000, "total-ms/op")
	b.ReportMetric(float64(inside.Microseconds())/n/1000, "plugin-ms/op")
	b.ReportMetric(float64((total-inside).Microseconds())/n/1000, "overhead-ms/op")
}

// newLocalForBench is a configured `local` scheduler plugin.
func newLocalForBench(tb testing.TB, label, upload string) plugins.Scheduler {
	tb.Helper()
	s := detached.NewLocal(cluster.WithLogger(slog.New(slog.DiscardHandler)))
	if err := s.Configure(context.Background(), plugins.Cluster{Label: label, Scheduler: "local", UploadPath: upload, MaxJobs: 1000}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newShRunner is the command runner with shRules.
func newShRunner(tb testing.TB, label string) plugins.Runner {
	tb.Helper()
	r := command.New()
	if err := r.Configure(context.Background(), label, shRules); err != nil {
		tb.Fatal(err)
	}
	return r
}

// createForBench does the bot's part for one input file, without Wake.
func createForBench(tb testing.TB, s *Scheduler, st *store.Store, user uint64, name, body string) store.Calculation {
	tb.Helper()
	r, err := s.Route(context.Background(), name, "")
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	folder := fmt.Sprintf("%s_%d", FolderName(user, 0, name, now), now.UnixNano())
	c, err := st.CreateCalculation(store.Calculation{UserID: user, InputName: name, Folder: folder,
		LocalDir: s.LocalDir(folder), Runner: r.Runner, Program: r.Plan.Program, Argv: r.Plan.Argv,
		Launch: r.Plan.Launch, Cluster: r.Cluster}, time.Hour, now)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(c.LocalDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.LocalDir, name), []byte(body), 0o644); err != nil {
		tb.Fatal(err)
	}
	return c
}

// memPoll is a plugins.Scheduler that answers Poll from memory: every job runs.
type memPoll struct{ plugins.Scheduler }

func (memPoll) Poll(_ context.Context, jobs []plugins.JobRef) ([]plugins.JobStatus, error) {
	out := make([]plugins.JobStatus, len(jobs))
	for i, j := range jobs {
		out[i] = plugins.JobStatus{JobID: j.JobID, State: plugins.StateRunning, Raw: "R"}
	}
	return out, nil
}

// BenchmarkPollCycle measures one poll cycle (read the active calculations, one
// Poll, apply the answers) with 10,000 running calculations in the store and a
// plugin that answers from memory: the scheduler's own cost per cycle.
func BenchmarkPollCycle(b *testing.B) {
	const n = 10_000
	path := filepath.Join(b.TempDir(), "hpcbot.db")
	copyFile(b, seedRunning(b, n), path)
	st, err := store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := Config{DownloadPath: b.TempDir(), FetchTime: FetchTime{Min: time.Hour, Max: time.Hour},
		Clusters: []ClusterConfig{{Cluster: plugins.Cluster{Label: "loc", Scheduler: "local", UploadPath: "/x"}, Runners: shRules}}}
	s, err := New(cfg, st, map[string]plugins.Scheduler{"loc": memPoll{}}, map[string][]plugins.Runner{"loc": {newShRunner(b, "loc")}}, newNotifier(), nil)
	if err != nil {
		b.Fatal(err)
	}
	c := s.byLabel["loc"]
	b.ResetTimer()
	for b.Loop() {
		s.pollPass(context.Background(), c)
	}
	b.StopTimer()
	if got, _ := st.CalcsByState(store.StateRunning); len(got) != n {
		b.Fatalf("%d running", len(got))
	}
}

// memPollSome answers Poll from memory like memPoll, but gives one job in
// every hundred a new raw state each cycle.
type memPollSome struct {
	plugins.Scheduler
	cycle *int
}

func (m memPollSome) Poll(_ context.Context, jobs []plugins.JobRef) ([]plugins.JobStatus, error) {
	*m.cycle++
	out := make([]plugins.JobStatus, len(jobs))
	for i, j := range jobs {
		out[i] = plugins.JobStatus{JobID: j.JobID, State: plugins.StateRunning, Raw: "R"}
		if i%100 == 0 {
			out[i].Raw = fmt.Sprintf("R %d", *m.cycle)
		}
	}
	return out, nil
}

// BenchmarkPollCycleChanges is BenchmarkPollCycle with 100 of the 10,000 jobs
// changing (their raw state) every cycle: each change is one store write of
// the whole record, all of a cycle's in one transaction.
func BenchmarkPollCycleChanges(b *testing.B) {
	const n = 10_000
	path := filepath.Join(b.TempDir(), "hpcbot.db")
	copyFile(b, seedRunning(b, n), path)
	st, err := store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := Config{DownloadPath: b.TempDir(), FetchTime: FetchTime{Min: time.Hour, Max: time.Hour},
		Clusters: []ClusterConfig{{Cluster: plugins.Cluster{Label: "loc", Scheduler: "local", UploadPath: "/x"}, Runners: shRules}}}
	cycle := 0
	s, err := New(cfg, st, map[string]plugins.Scheduler{"loc": memPollSome{cycle: &cycle}}, map[string][]plugins.Runner{"loc": {newShRunner(b, "loc")}}, newNotifier(), nil)
	if err != nil {
		b.Fatal(err)
	}
	c := s.byLabel["loc"]
	b.ResetTimer()
	for b.Loop() {
		s.pollPass(context.Background(), c)
	}
	b.StopTimer()
	jobs, err := st.ActiveJobs("loc")
	if err != nil || len(jobs) != n {
		b.Fatalf("%d active, %v", len(jobs), err)
	}
	if want := fmt.Sprintf("R %d", cycle); jobs[0].RawState != want {
		b.Fatalf("job 0's raw state %q, want %q", jobs[0].RawState, want)
	}
}

// seedRunning returns a store file with n running calculations on cluster loc.
// Writing it takes a transaction per step (a minute and more with fsync), so it
// is built once per schema version in the system's temp folder and copied.
func seedRunning(b *testing.B, n int) string {
	b.Helper()
	seed := filepath.Join(os.TempDir(), fmt.Sprintf("hpcbot-bench-running-%d-schema%d.db", n, store.LatestSchema()))
	if _, err := os.Stat(seed); err == nil {
		return seed
	}
	tmp := seed + fmt.Sprintf(".%d.tmp", os.Getpid())
	st, err := store.Open(tmp, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	u, _ := st.CreateUser(store.User{Limit: 1 << 30})
	now := time.Now()
	for i := range n {
		c, err := st.CreateCalculation(store.Calculation{UserID: u.ID, InputName: "in.inp", Folder: fmt.Sprintf("f%d", i),
			Cluster: "loc", Argv: []string{"orca", "in.inp"}, Launch: plugins.LaunchBatch}, time.Hour, now)
		if err != nil {
			b.Fatal(err)
		}
		for _, to := range []store.State{store.StateStaged, store.StateSubmitted, store.StateRunning} {
			if _, err := st.Transition(c.ID, to, "", func(_ *store.Tx, c *store.Calculation) error {
				c.JobID, c.RawState = fmt.Sprint(1000+c.ID), "R"
				c.Progress.Accepted = true
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

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// finishClock is a Notifier that records when EventFinished of each
// calculation arrived, and signals EventAccepted and EventFinished.
type finishClock struct {
	mu       sync.Mutex
	at       map[uint64]time.Time
	accepted chan uint64
	got      chan uint64
}

func (f *finishClock) Notify(_ context.Context, n Notification) error {
	switch n.Event {
	case EventAccepted:
		f.accepted <- n.Calc.ID
	case EventFinished:
		f.mu.Lock()
		_, seen := f.at[n.Calc.ID]
		if !seen {
			f.at[n.Calc.ID] = time.Now()
		}
		f.mu.Unlock()
		if !seen {
			f.got <- n.Calc.ID
		}
	}
	return nil
}

// BenchmarkJobEndToMessage measures, at fetch_time = 5 s, the time from a job's
// end to the Notifier's EventFinished (the moment the bot gets the message to
// send, results fetched and prepared as documents): the whole scheduler with
// the `local` plugin in this process. A job's end is the modification time of
// its exit-code file (the job script writes it when the program returns).
// b.N jobs run `sleep` for 1 s … 6 s (evenly spread), so that their ends fall
// evenly over a poll interval; the metrics are the distribution over the b.N
// jobs in seconds (ns/op is only the run's wall time divided by b.N). Run it
// with -benchtime=Nx; each sub-benchmark takes 15–30 s whatever N.
//
//   - steady: every job is submitted first and waits on a gate (a FIFO, so
//     waiting costs no CPU); the sleeps start together once all are accepted.
//     This is end → message with the cluster's worker free to poll.
//   - burst: the b.N jobs are woken at once and start as they are submitted, so
//     their ends overlap the intake of the others, which the same worker does.
func BenchmarkJobEndToMessage(b *testing.B) {
	b.Run("steady", func(b *testing.B) { benchEndToMessage(b, true) })
	b.Run("burst", func(b *testing.B) { benchEndToMessage(b, false) })
}

func benchEndToMessage(b *testing.B, gated bool) {
	const fetch = 5 * time.Second
	st, err := store.Open(filepath.Join(b.TempDir(), "hpcbot.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	u, _ := st.CreateUser(store.User{Limit: 1 << 30})
	upload := b.TempDir()
	// The gate is a FIFO: a job blocks in opening it (no CPU) until the
	// benchmark opens it for writing.
	gate := filepath.Join(b.TempDir(), "gate")
	if err := syscall.Mkfifo(gate, 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := Config{DownloadPath: b.TempDir(), FetchTime: FetchTime{Min: fetch, Max: fetch},
		Clusters: []ClusterConfig{{Cluster: plugins.Cluster{Label: "loc", Scheduler: "local", UploadPath: upload, MaxJobs: 1000}, Runners: shRules}}}
	clock := &finishClock{at: map[uint64]time.Time{}, accepted: make(chan uint64, b.N), got: make(chan uint64, b.N)}
	s, err := New(cfg, st, map[string]plugins.Scheduler{"loc": newLocalForBench(b, "loc", upload)},
		map[string][]plugins.Runner{"loc": {newShRunner(b, "loc")}}, clock, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	calcs := make([]store.Calculation, b.N)
	for i := range b.N {
		script := fmt.Sprintf("sleep %.3f; echo done", 1+5*float64(i)/float64(max(b.N-1, 1)))
		if gated {
			script = fmt.Sprintf("read x < %s; %s", shellquote.Quote(gate), script)
		}
		calcs[i] = createForBench(b, s, st, u.ID, fmt.Sprintf("end%d.sh", i), script)
	}
	timeout := time.After(3 * time.Minute)
	wait := func(ch chan uint64, what string) {
		for i := range b.N {
			select {
			case <-ch:
			case <-timeout:
				b.Fatalf("%d of %d jobs %s within 3 minutes", i, b.N, what)
			}
		}
	}
	b.ResetTimer()
	for _, c := range calcs {
		s.Wake(c.ID)
	}
	if gated {
		wait(clock.accepted, "accepted")
		w, err := os.OpenFile(gate, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close() // after every job has read its line
		if _, err := w.Write(bytes.Repeat([]byte("\n"), b.N)); err != nil {
			b.Fatal(err)
		}
	}
	wait(clock.got, "finished")
	b.StopTimer()
	lat := make([]float64, 0, b.N)
	for _, c := range calcs {
		fi, err := os.Stat(filepath.Join(upload, c.Folder, cluster.ExitCodeFile))
		if err != nil {
			b.Fatal(err)
		}
		clock.mu.Lock()
		at := clock.at[c.ID]
		clock.mu.Unlock()
		lat = append(lat, at.Sub(fi.ModTime()).Seconds())
	}
	slices.Sort(lat)
	q := func(p float64) float64 { // nearest rank
		return lat[max(0, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	b.ReportMetric(lat[0], "min-s")
	b.ReportMetric(q(0.5), "p50-s")
	b.ReportMetric(q(0.95), "p95-s")
	b.ReportMetric(lat[len(lat)-1], "max-s")
}
