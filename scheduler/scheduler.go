package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler/nextcloud"
	"hpcbot/store"
)

// Defaults of the tunables (see the Option functions).
const (
	DefaultBackoffBase     = 15 * time.Second // first retry of a failed step (AiiDA's cooldown)
	DefaultBackoffMax      = 10 * time.Minute // retries never wait longer
	DefaultDeliveryWorkers = 4
	// DefaultPollGrace is how long polls of a cluster may fail before the owners of
	// its running calculations are told that it is unreachable: a blip of a few
	// polls is not worth a message while the job runs on regardless.
	DefaultPollGrace = 15 * time.Minute
	// DefaultStopGrace is how long a step in flight may go on after Run's context
	// ended before it is abandoned (it is redone after the restart).
	DefaultStopGrace = 5 * time.Second
	// TelegramUploadLimit is the Bot API's limit for a document the bot sends
	// (50 MB, docs/FACTS.md#telegram-file-limits); larger results stay on the cluster.
	TelegramUploadLimit = 50 * 1000 * 1000
	// DefaultDiskReserve is the free space in download_path that fetching never uses.
	DefaultDiskReserve  = 64 << 20
	DefaultHousekeeping = 24 * time.Hour
	// DefaultInputGrace is how long a received calculation may wait for its input
	// file before it is lost. Accept writes the input before it creates the
	// calculation; the grace covers records created by other means (a restore,
	// a test) whose input comes after.
	DefaultInputGrace       = time.Hour
	defaultGiveUpAfter      = 72 * time.Hour
	defaultRetention        = 30 * 24 * time.Hour
	restartPause            = time.Second // after a panic, before a loop starts again
	finishSafetyNet         = time.Minute // the finisher looks at the store at least this often
	maxIntakeWait           = 10 * time.Minute
	userFolderPrefix        = "user_"
	actionFailover          = "calc.failover"
	notifyKeyFormat         = "calc/%d/%s"
	waitingKeyFormat        = "calc/%d/%s/%d"
	defaultTailLines        = 20
	defaultTailBytes        = 2000
	defaultFailoverNoteSize = 200
)

// Scheduler drives calculations through their lifecycle. Create it with New,
// start it with Run; Route, Accept, RunAgain, Clusters, Wake and Cancel are
// what the bot calls, and are safe for concurrent use.
type Scheduler struct {
	cfg          Config
	st           *store.Store
	notifier     Notifier
	log          *slog.Logger
	nc           *nextcloud.Client
	shareMu      sync.Mutex // serializes share lookups and creations
	downloadPath string     // absolute
	clusters     []*clusterState
	byLabel      map[string]*clusterState

	now             func() time.Time
	backoffBase     time.Duration
	backoffMax      time.Duration
	deliveryWorkers int
	pollGrace       time.Duration
	stopGrace       time.Duration
	uploadLimit     int64
	diskReserve     int64
	freeSpace       func(dir string) (int64, error)
	housekeeping    time.Duration

	claims     sync.Map // calc id → struct{}: one goroutine works on it
	woken      sync.Map // calc id → struct{}: Wake said its input is there
	inputGrace time.Duration
	// digestTimeout bounds a runner's Digest after fetch.
	digestTimeout time.Duration
	finishKick    chan struct{}
	running       atomic.Bool

	infoMu sync.Mutex
	infos  map[string][]plugins.RunnerInfo // cluster → Info of each runner, once learnt

	pluginRestarts func(cluster string) int // nil: not known
}

// clusterState is one cluster: its plugins, its worker's wake-up channels and
// what the worker learnt about its health.
type clusterState struct {
	cfg     ClusterConfig
	sched   plugins.Scheduler
	runners []plugins.Runner
	kick    chan struct{} // intake: a calculation was received
	pollNow chan struct{} // poll soon (after a cancel)

	mu        sync.Mutex
	authErr   string    // the cluster refused our login; "" when usable
	failing   bool      // the last call failed for an infrastructure reason
	downSince time.Time // first failed poll of the current outage
	pollFails int
	fetching  int         // delivery workers fetching from this cluster now
	drain     drainRecord // maintenance state (drain.go)
	// Health figures (health.go).
	failSince   time.Time // first failed call of the current failure; zero while it answers
	lastPoll    time.Time // end of the last poll
	lastPollDur time.Duration
	lastPollErr string
	submissions uint64 // jobs submitted since the start
	deliveries  uint64 // results delivered since the start
	traffic     trafficLog
}

// fetchSlot takes one of n fetch slots; false when all are taken.
func (c *clusterState) fetchSlot(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetching >= n {
		return false
	}
	c.fetching++
	return true
}

func (c *clusterState) fetchDone() {
	c.mu.Lock()
	c.fetching--
	c.mu.Unlock()
}

func (c *clusterState) label() string { return c.cfg.Label }

// health records the outcome of a call to the cluster's plugin.
func (c *clusterState) health(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		c.authErr, c.failing, c.failSince = "", false, time.Time{}
	case plugins.KindOf(err) == plugins.KindAuth:
		c.authErr = err.Error()
		if c.failSince.IsZero() {
			c.failSince = time.Now()
		}
	case plugins.IsTransient(err):
		c.failing = true
		if c.failSince.IsZero() {
			c.failSince = time.Now()
		}
	}
}

// usable reports whether the cluster is worth sending a calculation to now:
// not drained, not refusing our login, not failing.
func (c *clusterState) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authErr == "" && !c.failing && !c.drain.Drained
}

// Option tunes a Scheduler.
type Option func(*Scheduler)

// WithClock replaces time.Now for the retry bookkeeping (NextTry, WaitingSince,
// give_up_after, retention). Timers still run on real time.
func WithClock(now func() time.Time) Option { return func(s *Scheduler) { s.now = now } }

// WithBackoff sets the first retry delay and its cap (defaults 15 s and 10 min).
func WithBackoff(base, max time.Duration) Option {
	return func(s *Scheduler) { s.backoffBase, s.backoffMax = base, max }
}

// WithDeliveryWorkers sets how many calculations are fetched and delivered at once.
func WithDeliveryWorkers(n int) Option { return func(s *Scheduler) { s.deliveryWorkers = n } }

// WithNextcloud uses c for delivery instead of a client built from cfg.Storage.
func WithNextcloud(c *nextcloud.Client) Option { return func(s *Scheduler) { s.nc = c } }

// WithPollGrace sets how long a cluster's polls may fail before users are told.
func WithPollGrace(d time.Duration) Option { return func(s *Scheduler) { s.pollGrace = d } }

// WithStopGrace sets how long a step may run on after Run's context ended.
func WithStopGrace(d time.Duration) Option { return func(s *Scheduler) { s.stopGrace = d } }

// WithUploadLimit sets the largest document the bot can send (default 50 MB; a
// local Bot API server takes 2000 MB).
func WithUploadLimit(n int64) Option { return func(s *Scheduler) { s.uploadLimit = n } }

// WithDiskReserve sets the free space in download_path that fetching leaves alone.
func WithDiskReserve(n int64) Option { return func(s *Scheduler) { s.diskReserve = n } }

// WithFreeSpace replaces the function that measures free space in download_path.
func WithFreeSpace(f func(dir string) (int64, error)) Option {
	return func(s *Scheduler) { s.freeSpace = f }
}

// WithInputGrace sets how long a received calculation may lack its input file.
func WithInputGrace(d time.Duration) Option { return func(s *Scheduler) { s.inputGrace = d } }

// WithPluginRestarts tells Health how often a cluster's plugin processes were
// restarted (the plugin host knows).
func WithPluginRestarts(f func(cluster string) int) Option {
	return func(s *Scheduler) { s.pluginRestarts = f }
}

// WithHousekeeping sets how often old local folders are removed (default daily).
func WithHousekeeping(every time.Duration) Option {
	return func(s *Scheduler) { s.housekeeping = every }
}

// New checks that every configured cluster has its scheduler plugin and at
// least one runner, and returns a Scheduler that does nothing until Run. The
// plugins must be configured already (the plugin host does that).
func New(cfg Config, st *store.Store, schedulers map[string]plugins.Scheduler, runners map[string][]plugins.Runner,
	notifier Notifier, log *slog.Logger, opts ...Option) (*Scheduler, error) {
	if st == nil || notifier == nil {
		return nil, errors.New("scheduler: store and notifier are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DownloadPath == "" {
		return nil, errors.New("scheduler: download_path is empty")
	}
	dp, err := filepath.Abs(cfg.DownloadPath)
	if err != nil {
		return nil, fmt.Errorf("scheduler: download_path: %w", err)
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = defaultGiveUpAfter
	}
	if cfg.Retention <= 0 {
		cfg.Retention = defaultRetention
	}
	if cfg.FetchTime.Min <= 0 {
		cfg.FetchTime = FetchTime{Min: 120 * time.Second, Max: 240 * time.Second}
	}
	s := &Scheduler{
		cfg:             cfg,
		st:              st,
		notifier:        notifier,
		log:             log,
		downloadPath:    dp,
		byLabel:         map[string]*clusterState{},
		now:             time.Now,
		backoffBase:     DefaultBackoffBase,
		backoffMax:      DefaultBackoffMax,
		deliveryWorkers: DefaultDeliveryWorkers,
		pollGrace:       DefaultPollGrace,
		stopGrace:       DefaultStopGrace,
		uploadLimit:     TelegramUploadLimit,
		diskReserve:     DefaultDiskReserve,
		freeSpace:       freeSpace,
		housekeeping:    DefaultHousekeeping,
		inputGrace:      DefaultInputGrace,
		digestTimeout:   DefaultDigestTimeout,
		finishKick:      make(chan struct{}, 1),
		infos:           map[string][]plugins.RunnerInfo{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.backoffBase <= 0 || s.backoffMax < s.backoffBase {
		return nil, fmt.Errorf("scheduler: backoff %v..%v: want 0 < base <= max", s.backoffBase, s.backoffMax)
	}
	if s.deliveryWorkers < 1 {
		s.deliveryWorkers = 1
	}
	var errs []error
	for _, cc := range cfg.Clusters {
		if _, dup := s.byLabel[cc.Label]; dup {
			errs = append(errs, fmt.Errorf("cluster %s: configured twice", cc.Label))
			continue
		}
		sched := schedulers[cc.Label]
		if sched == nil {
			errs = append(errs, fmt.Errorf("cluster %s: no scheduler plugin", cc.Label))
		}
		if len(runners[cc.Label]) == 0 {
			errs = append(errs, fmt.Errorf("cluster %s: no runner plugin", cc.Label))
		}
		c := &clusterState{cfg: cc, sched: sched, runners: runners[cc.Label],
			kick: make(chan struct{}, 1), pollNow: make(chan struct{}, 1)}
		s.clusters = append(s.clusters, c)
		s.byLabel[cc.Label] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if err := s.loadDrains(); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if cfg.Storage.Enabled() && s.nc == nil {
		s.nc, err = cfg.Storage.Client(log.With("component", "nextcloud"))
		if err != nil {
			return nil, fmt.Errorf("scheduler: storage: %w", err)
		}
	}
	return s, nil
}

// Run drives calculations until ctx ends: one worker per cluster (intake and
// polling), a pool that fetches, delivers and notifies, and housekeeping. It
// first resumes every calculation that is not final by redoing the step of its
// state. When ctx ends it takes no new work, gives the steps in flight the stop
// grace (5 s) to finish, abandons the rest (each is redone after a restart), and
// returns. Run may be called once.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("scheduler: Run called twice")
	}
	s.orphans()
	s.releaseHolds()
	var wg sync.WaitGroup
	start := func(name string, loop func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.supervise(ctx, name, loop)
		}()
	}
	for _, c := range s.clusters {
		start("cluster "+c.label(), func(ctx context.Context) { s.clusterLoop(ctx, c) })
	}
	start("finisher", s.finishLoop)
	start("housekeeping", s.housekeepingLoop)
	s.log.Info("scheduler running", "clusters", len(s.clusters), "delivery_workers", s.deliveryWorkers)
	wg.Wait()
	s.log.Info("scheduler stopped")
	return nil
}

// supervise runs loop until ctx ends, restarting it after a panic.
func (s *Scheduler) supervise(ctx context.Context, name string, loop func(context.Context)) {
	for ctx.Err() == nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("scheduler loop panicked; restarting it", "loop", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				}
			}()
			loop(ctx)
		}()
		select {
		case <-ctx.Done():
		case <-time.After(restartPause):
		}
	}
}

// safely runs f and turns a panic into a logged error, so that one calculation
// cannot take a worker down.
func (s *Scheduler) safely(calc uint64, f func()) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("step panicked", "calc", calc, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	f()
}

// Wake tells the scheduler that calculation id was just created in state
// received with its input in LocalDir: its cluster's worker stages and submits it
// at once. Waking an unknown or already submitted calculation does nothing.
func (s *Scheduler) Wake(id uint64) {
	c, err := s.st.Calc(id)
	if err != nil {
		s.log.Warn("wake: no such calculation", "calc", id, "err", err)
		return
	}
	if cl := s.byLabel[c.Cluster]; cl != nil {
		s.woken.Store(id, struct{}{})
		kick(cl.kick)
		return
	}
	s.log.Error("wake: calculation names an unknown cluster", "calc", id, "cluster", c.Cluster)
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// claim marks calc id as worked on by the caller; false when another goroutine has it.
func (s *Scheduler) claim(id uint64) bool {
	_, busy := s.claims.LoadOrStore(id, struct{}{})
	return !busy
}

func (s *Scheduler) release(id uint64) { s.claims.Delete(id) }

// stepContext is the context of one step: it ends stopGrace after ctx ends, so
// that a step in flight at shutdown can finish, but no later.
func (s *Scheduler) stepContext(ctx context.Context) (context.Context, context.CancelFunc) {
	sc, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var t *time.Timer
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		t = time.AfterFunc(s.stopGrace, cancel)
		mu.Unlock()
	})
	return sc, func() {
		stop()
		mu.Lock()
		if t != nil {
			t.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// orphans puts in error every calculation that still needs a cluster that is no
// longer configured; nothing else could ever move it.
func (s *Scheduler) orphans() {
	states := []store.State{store.StateReceived, store.StateStaged, store.StateSubmitted, store.StatePending,
		store.StateRunning, store.StateSucceeded, store.StateFailed, store.StateCancelled, store.StateTimedOut}
	calcs, err := s.st.CalcsByState(states...)
	if err != nil {
		s.log.Error("read calculations", "err", err)
		return
	}
	for _, c := range calcs {
		if s.byLabel[c.Cluster] != nil || (c.State.Ended() && c.JobID == "") {
			continue
		}
		s.toError(context.Background(), c, CodeClusterUnreachable,
			fmt.Sprintf("cluster %q is no longer in the configuration; add it back and retry the calculation", c.Cluster))
	}
}

// notifyKey is the Notifier key of an event: "calc/42/finished". After an
// admin's retry (error → received) the calculation runs again and its keys get
// the round: "calc/42/finished/r2".
func notifyKey(c store.Calculation, ev Event) string {
	k := fmt.Sprintf(notifyKeyFormat, c.ID, ev)
	if r := round(c); r > 1 {
		k += fmt.Sprintf("/r%d", r)
	}
	return k
}

// round counts how often the calculation entered received: 1, or more after retries.
func round(c store.Calculation) int {
	n := 0
	for _, h := range c.History {
		if h.State == store.StateReceived {
			n++
		}
	}
	return max(n, 1)
}
