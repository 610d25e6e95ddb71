package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/detached"
	"hpcbot/runners/command"
	"hpcbot/scheduler/nextcloud/nctest"
	"hpcbot/store"
)

// waitLimit bounds every wait for a condition; tests never assert on speed.
const waitLimit = 90 * time.Second

// notifier is the bot's side of the contract: it keeps the first message of each
// key and counts every call.
type notifier struct {
	mu    sync.Mutex
	calls map[string]int
	got   []Notification
}

func newNotifier() *notifier { return &notifier{calls: map[string]int{}} }

func (n *notifier) Notify(_ context.Context, m Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls[m.Key]++
	if n.calls[m.Key] == 1 {
		n.got = append(n.got, m)
	}
	return nil
}

// of returns the messages of calc id with event ev.
func (n *notifier) of(id uint64, ev Event) []Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Notification
	for _, m := range n.got {
		if m.Calc.ID == id && m.Event == ev {
			out = append(out, m)
		}
	}
	return out
}

// repeated lists keys Notify was called with more than once.
func (n *notifier) repeated() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for k, c := range n.calls {
		if c > 1 {
			out = append(out, fmt.Sprintf("%s×%d", k, c))
		}
	}
	return out
}

// faulty wraps a real plugins.Scheduler: it counts calls, counts the jobs Submit
// actually launched (Existing false), and fails or blocks methods on demand.
type faulty struct {
	plugins.Scheduler
	mu       sync.Mutex
	fail     map[string]error
	block    map[string]chan struct{}
	calls    map[string]int
	launches map[uint64]int
	pollHook func([]plugins.JobStatus) []plugins.JobStatus
	panics   int
}

func newFaulty(s plugins.Scheduler) *faulty {
	return &faulty{Scheduler: s, fail: map[string]error{}, block: map[string]chan struct{}{},
		calls: map[string]int{}, launches: map[uint64]int{}}
}

func (f *faulty) set(method string, err error) { f.mu.Lock(); f.fail[method] = err; f.mu.Unlock() }

func (f *faulty) count(method string) int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls[method] }

func (f *faulty) launched(id uint64) int { f.mu.Lock(); defer f.mu.Unlock(); return f.launches[id] }

// hold makes method block until ctx ends or release is called.
func (f *faulty) hold(method string) (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.block[method] = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.block, method)
			f.mu.Unlock()
			close(ch)
		})
	}
}

func (f *faulty) enter(ctx context.Context, method string) error {
	f.mu.Lock()
	f.calls[method]++
	err := f.fail[method]
	ch := f.block[method]
	f.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return plugins.Errorf(plugins.KindTransient, "%s: %w", method, ctx.Err())
		}
	}
	return err
}

func (f *faulty) Stage(ctx context.Context, req plugins.StageRequest) error {
	if err := f.enter(ctx, "stage"); err != nil {
		return err
	}
	return f.Scheduler.Stage(ctx, req)
}

func (f *faulty) Submit(ctx context.Context, req plugins.SubmitRequest) (plugins.SubmitResult, error) {
	if err := f.enter(ctx, "submit"); err != nil {
		return plugins.SubmitResult{}, err
	}
	// Like sbatch over SSH, the launch goes on when the caller gives up on it.
	type answer struct {
		res plugins.SubmitResult
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		res, err := f.Scheduler.Submit(context.WithoutCancel(ctx), req)
		ch <- answer{res, err}
	}()
	var res plugins.SubmitResult
	var err error
	select {
	case a := <-ch:
		res, err = a.res, a.err
	case <-ctx.Done():
		go func() { // count a launch the caller never heard of
			if a := <-ch; a.err == nil && !a.res.Existing {
				f.mu.Lock()
				f.launches[req.CalcID]++
				f.mu.Unlock()
			}
		}()
		return plugins.SubmitResult{}, plugins.Errorf(plugins.KindTransient, "submit: %w", ctx.Err())
	}
	if err == nil && !res.Existing {
		f.mu.Lock()
		f.launches[req.CalcID]++
		f.mu.Unlock()
	}
	return res, err
}

func (f *faulty) Poll(ctx context.Context, jobs []plugins.JobRef) ([]plugins.JobStatus, error) {
	if err := f.enter(ctx, "poll"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if f.panics > 0 {
		f.panics--
		f.mu.Unlock()
		panic("injected poll panic")
	}
	hook := f.pollHook
	f.mu.Unlock()
	st, err := f.Scheduler.Poll(ctx, jobs)
	if err == nil && hook != nil {
		st = hook(st)
	}
	return st, err
}

func (f *faulty) Cancel(ctx context.Context, job plugins.JobRef) error {
	if err := f.enter(ctx, "cancel"); err != nil {
		return err
	}
	return f.Scheduler.Cancel(ctx, job)
}

func (f *faulty) Fetch(ctx context.Context, req plugins.FetchRequest) (plugins.FetchResult, error) {
	if err := f.enter(ctx, "fetch"); err != nil {
		return plugins.FetchResult{}, err
	}
	return f.Scheduler.Fetch(ctx, req)
}

func (f *faulty) Cleanup(ctx context.Context, folder string) error {
	if err := f.enter(ctx, "cleanup"); err != nil {
		return err
	}
	return f.Scheduler.Cleanup(ctx, folder)
}

var _ plugins.Scheduler = (*faulty)(nil)

// Tail passes through to the wrapped plugin, which must be a Tailer.
func (f *faulty) Tail(ctx context.Context, req plugins.TailRequest) (plugins.TailResult, error) {
	if err := f.enter(ctx, "tail"); err != nil {
		return plugins.TailResult{}, err
	}
	return f.Scheduler.(plugins.Tailer).Tail(ctx, req)
}

// TransportStats passes the wrapped plugin's counts through, when it keeps them.
func (f *faulty) TransportStats(ctx context.Context) (plugins.TransportStats, error) {
	if sr, ok := f.Scheduler.(plugins.StatsReporter); ok {
		return sr.TransportStats(ctx)
	}
	return plugins.TransportStats{}, plugins.Errorf(plugins.KindPermanent, "no traffic counts")
}

var (
	errDown = plugins.Errorf(plugins.KindTransient, "dial tcp 127.0.0.1:22: connection refused")
	errAuth = plugins.Errorf(plugins.KindAuth, "ssh: unable to authenticate, attempted methods [none publickey]")
)

// shRules run shell scripts sent as *.sh: `sh job.sh`.
var shRules = []plugins.RunnerRule{{
	Runner:       "command",
	Program:      "sh",
	AllowedArgs:  []string{"{}", "-e"},
	Associations: []string{".sh"},
	Description:  "POSIX shell",
}}

// bed is one test's world: a store with a user, clusters with real local
// plugins behind fault injectors, a notifier, and optionally a fake Nextcloud.
type bed struct {
	t        *testing.T
	st       *store.Store
	user     store.User
	cfg      Config
	notes    *notifier
	nc       *nctest.Server
	faults   map[string]*faulty
	uploads  map[string]string // cluster → upload_path
	scheds   map[string]plugins.Scheduler
	runners  map[string][]plugins.Runner
	opts     []Option
	s        *Scheduler
	cancel   context.CancelFunc
	runDone  chan struct{}
	storeDir string
}

type bedOpt func(*bed)

// withCloud delivers through a fake Nextcloud.
func withCloud(share string) bedOpt {
	return func(b *bed) {
		b.nc = nctest.New(b.t)
		b.cfg.Storage = StorageConfig{URL: b.nc.URL, User: b.nc.User, Password: plugins.Secret(b.nc.Password),
			BasePath: "hpc_results", Share: share}
	}
}

// withClusters adds local clusters with these labels, in this order.
func withClusters(labels ...string) bedOpt {
	return func(b *bed) {
		for _, l := range labels {
			b.addLocal(l, 4)
		}
	}
}

func newBed(t *testing.T, opts ...bedOpt) *bed {
	t.Helper()
	b := &bed{t: t, notes: newNotifier(), faults: map[string]*faulty{}, uploads: map[string]string{},
		scheds: map[string]plugins.Scheduler{}, runners: map[string][]plugins.Runner{}, storeDir: t.TempDir()}
	st, err := store.Open(filepath.Join(b.storeDir, "hpcbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b.st = st
	b.user, err = st.CreateUser(store.User{FirstName: "Ada", Org: "ipc", Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	b.cfg = Config{
		DownloadPath:        t.TempDir(),
		FetchTime:           FetchTime{Min: 30 * time.Millisecond, Max: 60 * time.Millisecond},
		ExtensionsWhitelist: []string{".out", ".txt", ".log"},
		GiveUpAfter:         time.Hour,
	}
	b.opts = []Option{WithBackoff(10*time.Millisecond, 40*time.Millisecond), WithStopGrace(2 * time.Second),
		WithPollGrace(0)}
	for _, o := range opts {
		o(b)
	}
	if len(b.cfg.Clusters) == 0 {
		b.addLocal("loc", 4)
	}
	return b
}

// addLocal adds a `local` cluster (detached processes on this host) with the sh runner.
func (b *bed) addLocal(label string, maxJobs int) { b.addLocalRules(label, maxJobs, shRules) }

// addLocalRules adds a `local` cluster with these runner rules.
func (b *bed) addLocalRules(label string, maxJobs int, rules []plugins.RunnerRule) {
	b.t.Helper()
	b.addLocalRunner(label, maxJobs, rules, command.New())
}

// addLocalRunner adds a `local` cluster whose runner r is configured with rules.
func (b *bed) addLocalRunner(label string, maxJobs int, rules []plugins.RunnerRule, r plugins.Runner) {
	b.t.Helper()
	ctx := context.Background()
	pc := plugins.Cluster{Label: label, Scheduler: "local", UploadPath: b.t.TempDir(), MaxJobs: maxJobs}
	// Before the folder is removed (cleanups run last first): let every job
	// still waiting for its go file end, and wait until every job process,
	// which runs the queue's dispatcher as it ends, has exited; otherwise the
	// removal races with the dispatcher writing in .hpcbot-queue.
	b.t.Cleanup(func() { reapJobs(b.t, pc.UploadPath) })
	real := detached.NewLocal(cluster.WithLostGrace(2*time.Second), cluster.WithSubmitWait(time.Second), cluster.WithLogger(slog.New(slog.DiscardHandler)))
	if err := real.Configure(ctx, pc); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { real.Close() })
	if err := r.Configure(ctx, label, rules); err != nil {
		b.t.Fatal(err)
	}
	f := newFaulty(real)
	b.faults[label], b.scheds[label], b.uploads[label] = f, f, pc.UploadPath
	b.runners[label] = []plugins.Runner{r}
	b.cfg.Clusters = append(b.cfg.Clusters, ClusterConfig{Cluster: pc, Runners: rules})
}

// start creates the Scheduler and runs it until the test ends (or stop).
func (b *bed) start(extra ...Option) *Scheduler {
	b.t.Helper()
	s, err := New(b.cfg, b.st, b.scheds, b.runners, b.notes, testLogger(b.t), append(append([]Option{}, b.opts...), extra...)...)
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			b.t.Errorf("Run: %v", err)
		}
	}()
	b.s, b.cancel, b.runDone = s, cancel, done
	b.t.Cleanup(b.stop)
	return s
}

// stop ends Run and waits for it to return.
func (b *bed) stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	<-b.runDone
	b.cancel = nil
}

// submit does what the bot does with a document: route it, create the
// calculation, put the input in its folder and wake the scheduler.
func (b *bed) submit(name, body, caption string) store.Calculation {
	b.t.Helper()
	if b.s == nil {
		b.t.Fatal("submit before start")
	}
	return b.create(b.s, name, body, caption, true)
}

func (b *bed) create(s *Scheduler, name, body, caption string, wake bool) store.Calculation {
	b.t.Helper()
	r, err := s.Route(context.Background(), name, caption)
	if err != nil {
		b.t.Fatalf("route %s: %v", name, err)
	}
	now := time.Now()
	folder := FolderName(b.user.ID, 0, name, now)
	c, err := b.st.CreateCalculation(store.Calculation{
		UserID: b.user.ID, ChatID: 1, InputName: name,
		Folder: folder + fmt.Sprintf("_%d", now.UnixNano()%1e9), // unique in fast tests
		Runner: r.Runner, Program: r.Plan.Program, Argv: r.Plan.Argv, Launch: r.Plan.Launch,
		Resources: r.Plan.Resources, ResultExtensions: r.Plan.Extensions, ResultFiles: r.Plan.Files,
		Cluster: r.Cluster,
	}, 24*time.Hour, now)
	if err != nil {
		b.t.Fatal(err)
	}
	c, err = b.st.UpdateCalc(c.ID, func(_ *store.Tx, c *store.Calculation) error {
		c.LocalDir = s.LocalDir(c.Folder)
		return nil
	})
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.MkdirAll(c.LocalDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.LocalDir, name), []byte(body), 0o644); err != nil {
		b.t.Fatal(err)
	}
	if wake {
		s.Wake(c.ID)
	}
	return c
}

// remote is the calculation's folder on its cluster.
func (b *bed) remote(c store.Calculation) string {
	return filepath.Join(b.uploads[c.Cluster], c.Folder)
}

// release creates the file a waiting job script waits for.
func (b *bed) release(c store.Calculation) {
	b.t.Helper()
	if err := os.WriteFile(filepath.Join(b.remote(c), "go"), nil, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// reapJobs releases every job below upload (writes its go file) and waits
// until each job process has exited.
func reapJobs(t *testing.T, upload string) {
	entries, err := os.ReadDir(upload)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(upload, e.Name())
		data, err := os.ReadFile(filepath.Join(dir, detached.PIDFile))
		if err != nil {
			continue // never started
		}
		var pid int
		if _, err := fmt.Sscan(string(data), &pid); err != nil || pid <= 0 {
			continue
		}
		_ = os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
		deadline := time.Now().Add(waitLimit)
		for syscall.Kill(pid, 0) != syscall.ESRCH && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// waitJobGone waits until the process of calc's detached job has exited, so
// that a check for what it would have written afterwards means something.
func (b *bed) waitJobGone(c store.Calculation) {
	b.t.Helper()
	data, err := os.ReadFile(filepath.Join(b.remote(c), detached.PIDFile))
	if err != nil {
		return // never started
	}
	var pid int
	if _, err := fmt.Sscan(string(data), &pid); err != nil || pid <= 0 {
		b.t.Fatalf("pid file %q: %v", data, err)
	}
	until(b.t, func() string { return fmt.Sprintf("job process %d still alive", pid) }, func() bool {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	})
}

// waitScript waits for the file "go" in its folder, then runs tail. It gives up
// when its folder is removed (the test ended) or after ten minutes, so a test
// that never says go leaves no process behind.
func waitScript(tail string) string {
	return "i=0\nwhile [ ! -e go ]; do [ -d \"$PWD\" ] && [ $i -lt 12000 ] || exit 99; i=$((i+1)); sleep 0.05; done\n" + tail + "\n"
}

// until waits for cond, failing the test with what() after waitLimit.
func until(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitState waits until calculation id is in one of states and returns it.
func (b *bed) waitState(id uint64, states ...store.State) store.Calculation {
	b.t.Helper()
	var c store.Calculation
	until(b.t, func() string {
		return fmt.Sprintf("calc %d is %s (want %v), history %s, error %q", id, c.State, states, history(c), c.Error)
	}, func() bool {
		var err error
		c, err = b.st.Calc(id)
		if err != nil {
			b.t.Fatal(err)
		}
		for _, s := range states {
			if c.State == s {
				return true
			}
		}
		return false
	})
	return c
}

// waitError waits until calculation id is in error and its notice was queued.
func (b *bed) waitError(id uint64) store.Calculation {
	b.t.Helper()
	b.waitState(id, store.StateError)
	var c store.Calculation
	until(b.t, func() string { return "error notice recorded" }, func() bool {
		c, _ = b.st.Calc(id)
		return c.Progress.ErrorNotified
	})
	return c
}

func history(c store.Calculation) string {
	var parts []string
	for _, h := range c.History {
		p := string(h.State)
		if h.Note != "" {
			p += "(" + h.Note + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " → ")
}

func states(c store.Calculation) []store.State {
	var out []store.State
	for _, h := range c.History {
		out = append(out, h.State)
	}
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}
