package plugins

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"hpcbot/plugins/kit"
)

// HostOptions configures a Host. Zero values take the defaults noted.
type HostOptions struct {
	// PluginDir holds drop-in plugins: executables named hpcbot-scheduler-<name>
	// or hpcbot-runner-<name>. Empty: no drop-ins.
	PluginDir string
	// Executable serves the built-in plugins as `<Executable> plugin serve <kind> <name>`.
	// Empty: this process's own executable (os.Executable).
	Executable string
	// Builtins lists the built-in plugins: the Registry main also hands to Serve.
	Builtins Registry
	// Logger gets the host's and the plugins' log records, tagged with plugin and
	// cluster. Nil: slog.Default().
	Logger *slog.Logger
	// CallTimeout bounds every call to a plugin; a shorter ctx deadline wins.
	// 0: DefaultCallTimeout.
	CallTimeout time.Duration
	// TransferTimeout bounds Stage and Fetch when their ctx has no deadline.
	// 0: DefaultTransferTimeout.
	TransferTimeout time.Duration
	// StartTimeout bounds starting a plugin process: handshake, Version and Configure.
	// 0: one minute.
	StartTimeout time.Duration
	// RestartMin and RestartMax bound the exponential backoff between restarts of a
	// plugin process that exited. 0: 100ms and 30s.
	RestartMin, RestartMax time.Duration

	env []string // extra environment for plugin processes (tests)
}

// pluginEnvVars are the variables of hpcbot's environment a plugin process
// gets: what a program needs to find its tools, its home and its locale, and
// the SSH agent. Nothing else reaches it (hpcbot's own secrets, such as the bot
// token, stay here); a cluster's password travels in Configure, and the
// variable its key_passphrase_env names is added for that cluster's scheduler.
var pluginEnvVars = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE",
	"LC_NUMERIC", "LC_MESSAGES", "TZ", "TMPDIR", "SSH_AUTH_SOCK", "GOCOVERDIR"}

// envUnixSocketDir tells go-plugin's server where to create its socket
// (github.com/hashicorp/go-plugin, server.go: unixSocketConfigFromEnv).
const envUnixSocketDir = "PLUGIN_UNIX_SOCKET_DIR"

// Host starts plugin processes, one scheduler per cluster and one per built-in
// runner (a drop-in runner: one per cluster that uses it), and restarts them
// when they exit. Its methods are safe for concurrent use.
//
// Which executable serves a plugin: a drop-in hpcbot-<kind>-<name> in PluginDir
// if there is one, else the built-in of that name served by Executable. A drop-in
// therefore overrides a built-in of the same name (logged as a warning), so an
// operator can replace a built-in without rebuilding hpcbot.
type Host struct {
	opts HostOptions
	log  *slog.Logger

	mu     sync.Mutex
	procs  []*proc
	keys   map[string]bool  // clusters (and runners) started or starting
	shared map[string]*proc // the process of each built-in runner, by name
	closed bool

	sharedMu sync.Mutex     // held while a built-in runner's process starts or takes a cluster
	wg       sync.WaitGroup // watch goroutines

	sockDir string // the plugins' unix sockets, mode 0700; removed by Close
}

// NewHost returns a Host; it starts nothing until Scheduler or Runner is called.
func NewHost(opts HostOptions) (*Host, error) {
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("plugin host: find own executable: %w", err)
		}
		opts.Executable = exe
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.CallTimeout, DefaultCallTimeout)
	def(&opts.TransferTimeout, DefaultTransferTimeout)
	def(&opts.StartTimeout, time.Minute)
	def(&opts.RestartMin, 100*time.Millisecond)
	def(&opts.RestartMax, 30*time.Second)
	opts.RestartMax = max(opts.RestartMax, opts.RestartMin)
	// The plugins' sockets go into a folder only hpcbot's user can enter
	// (os.MkdirTemp makes it 0700 whatever the umask), so another local user can
	// neither connect to a plugin nor replace its socket.
	sockDir, err := os.MkdirTemp("", "hpcbot-plugins-")
	if err != nil {
		return nil, fmt.Errorf("plugin host: socket folder: %w", err)
	}
	return &Host{opts: opts, log: opts.Logger, keys: map[string]bool{}, shared: map[string]*proc{}, sockDir: sockDir}, nil
}

// Found is a drop-in plugin found in the plugin folder.
type Found struct {
	Kind string // PluginScheduler or PluginRunner
	Name string // the <name> in hpcbot-<kind>-<name>
	Path string
}

// pluginNameRE is what a plugin name may look like (config values and file names).
var pluginNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func dropInPrefix(kind string) string { return kit.DropInPrefix(kind) }

// Discover lists the drop-in plugins in PluginDir: executable regular files (or
// symlinks to one) named hpcbot-scheduler-<name> or hpcbot-runner-<name>, where
// name is lower-case letters, digits, '-' and '_'. A file that has the prefix but
// is not usable is logged and skipped. A missing PluginDir is an error; an empty
// PluginDir setting finds nothing.
func (h *Host) Discover() ([]Found, error) {
	if h.opts.PluginDir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(h.opts.PluginDir)
	if err != nil {
		return nil, fmt.Errorf("discover plugins: %w", err)
	}
	var found []Found
	for _, e := range entries {
		for _, kind := range []string{PluginScheduler, PluginRunner} {
			name, ok := strings.CutPrefix(e.Name(), dropInPrefix(kind))
			if !ok {
				continue
			}
			path := filepath.Join(h.opts.PluginDir, e.Name())
			if err := usableDropIn(path, name); err != nil {
				h.log.Warn("plugin folder: skipping file", "path", path, "err", err)
				continue
			}
			found = append(found, Found{Kind: kind, Name: name, Path: path})
		}
	}
	return found, nil
}

// usableDropIn says why path (a drop-in for name) cannot be used, or nil.
func usableDropIn(path, name string) error {
	if !pluginNameRE.MatchString(name) {
		return fmt.Errorf("plugin name %q is not lower-case letters, digits, '-' and '_'", name)
	}
	fi, err := os.Stat(path) // follows symlinks
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}

// command says how to start the plugin of that kind and name.
func (h *Host) command(kind, name string) (path string, args []string, builtin bool, err error) {
	if !pluginNameRE.MatchString(name) {
		return "", nil, false, &Error{Kind: KindPermanent, Msg: fmt.Sprintf(
			"%s plugin name %q: use lower-case letters, digits, '-' and '_'", kind, name)}
	}
	isBuiltin := h.opts.Builtins.has(kind, name)
	if h.opts.PluginDir != "" {
		p := filepath.Join(h.opts.PluginDir, dropInPrefix(kind)+name)
		if _, statErr := os.Stat(p); statErr == nil {
			if err := usableDropIn(p, name); err != nil {
				return "", nil, false, &Error{Kind: KindPermanent, Msg: "drop-in plugin", Err: err}
			}
			if isBuiltin {
				h.log.Warn("drop-in plugin overrides the built-in one", "plugin", name, "kind", kind, "path", p)
			}
			return p, nil, false, nil
		} else if !errors.Is(statErr, fs.ErrNotExist) {
			return "", nil, false, &Error{Kind: KindPermanent, Msg: "drop-in plugin", Err: statErr}
		}
	}
	if isBuiltin {
		return h.opts.Executable, []string{"plugin", "serve", kind, name}, true, nil
	}
	where := "and no plugin folder is configured"
	if h.opts.PluginDir != "" {
		where = "and there is no " + filepath.Join(h.opts.PluginDir, dropInPrefix(kind)+name)
	}
	return "", nil, false, &Error{Kind: KindPermanent, Msg: fmt.Sprintf(
		"no %s plugin %q: the built-in ones are %s, %s", kind, name,
		orNone(h.opts.Builtins.Names(kind)), where)}
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

// Scheduler starts the scheduler plugin of c (c.Scheduler names it) in a process
// of its own, configures it with c, and returns a Scheduler that calls it with a
// deadline on every call and survives restarts of the process. One per cluster
// label: a second call for the same label is an error.
func (h *Host) Scheduler(ctx context.Context, c Cluster) (Scheduler, error) {
	if c.Label == "" {
		return nil, &Error{Kind: KindPermanent, Msg: "scheduler plugin: the cluster has no label"}
	}
	p, err := h.start(ctx, PluginScheduler, c.Scheduler, c.Label, c)
	if err != nil {
		return nil, err
	}
	return &schedulerProxy{p: p}, nil
}

// Runner starts the runner plugin called name for a cluster, configures it
// with the rules, and returns a Runner like Scheduler does. One per cluster and
// runner name. A built-in runner serves every cluster that uses it from one
// process, which keeps one instance of the runner per cluster, configured with
// that cluster's rules (each call names its cluster: kit.ClusterMetadata); the
// process is restarted and every cluster configured again after a crash. A
// drop-in runner gets a process per cluster, as it may not know
// kit.ClusterMetadata.
func (h *Host) Runner(ctx context.Context, cluster, name string, rules []RunnerRule) (FullRunner, error) {
	path, args, builtin, err := h.command(PluginRunner, name)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if !builtin {
		p, err := h.startCmd(ctx, PluginRunner, name, cluster, path, args, builtin, runnerConfig{cluster: cluster, rules: rules})
		if err != nil {
			return nil, err
		}
		return &runnerProxy{p: p}, nil
	}
	// One start or addition at a time: two clusters must not both start the
	// process of a runner.
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	key := PluginRunner + "\x00" + cluster + "\x00" + name
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return nil, &Error{Kind: KindTransient, Msg: "plugin host is closed"}
	case h.keys[key]:
		h.mu.Unlock()
		return nil, &Error{Kind: KindPermanent, Msg: fmt.Sprintf("cluster %s already has a %s plugin %q", cluster, PluginRunner, name)}
	}
	p := h.shared[name]
	h.mu.Unlock()
	if p == nil {
		p, err = h.startCmd(ctx, PluginRunner, name, cluster, path, args, builtin, runnerConfigs{cluster: rules})
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.shared[name] = p // startCmd marked key
		h.mu.Unlock()
		return &runnerProxy{p: p, cluster: cluster, shared: true}, nil
	}
	r := &runnerProxy{p: p, cluster: cluster, shared: true}
	if err := r.Configure(ctx, cluster, rules); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	h.mu.Lock()
	h.keys[key] = true
	h.mu.Unlock()
	p.log.Info("plugin serves one more cluster", "cluster", cluster, "pid", p.status().PID)
	return r, nil
}

// runnerConfig is the configuration of a runner process that serves one
// cluster; runnerConfigs that of a built-in runner's process, by cluster.
type runnerConfig struct {
	cluster string
	rules   []RunnerRule
}

type runnerConfigs map[string][]RunnerRule

func (h *Host) start(ctx context.Context, kind, name, cluster string, config any) (*proc, error) {
	path, args, builtin, err := h.command(kind, name)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	return h.startCmd(ctx, kind, name, cluster, path, args, builtin, config)
}

// startCmd starts the process that serves plugin name of kind for cluster (the
// first cluster, for a built-in runner's process: runnerConfigs) with the
// command that h.command gave.
func (h *Host) startCmd(ctx context.Context, kind, name, cluster, path string, args []string, builtin bool, config any) (*proc, error) {
	key := kind + "\x00" + cluster
	if kind == PluginRunner {
		key += "\x00" + name
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, &Error{Kind: KindTransient, Msg: "plugin host is closed"}
	}
	if h.keys[key] {
		h.mu.Unlock()
		return nil, &Error{Kind: KindPermanent, Msg: fmt.Sprintf("cluster %s already has a %s plugin %q", cluster, kind, name)}
	}
	h.keys[key] = true
	h.mu.Unlock()

	p := newProc(h, kind, name, cluster, path, args, builtin, config)
	inst, err := p.spawn(ctx)
	if err != nil {
		h.mu.Lock()
		delete(h.keys, key)
		h.mu.Unlock()
		return nil, err
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		inst.stop()
		return nil, &Error{Kind: KindTransient, Msg: "plugin host is closed"}
	}
	p.cur = inst
	h.procs = append(h.procs, p)
	h.wg.Add(1)
	h.mu.Unlock()
	go p.watch(inst)
	p.log.Info("plugin started", "pid", inst.pid, "path", path, "version", p.version)
	return p, nil
}

// Status is one plugin process as `hpcbot check` shows it.
type Status struct {
	Kind    string // PluginScheduler or PluginRunner
	Name    string // the name in the config
	Cluster string // the first cluster it serves
	// Clusters are the clusters it serves, sorted: one, except for a
	// built-in runner's process, which serves every cluster that uses it.
	Clusters []string
	Path     string // the executable
	Builtin  bool   // served by hpcbot's own executable
	// PluginName and Version are what the plugin reported (Version RPC).
	PluginName string
	Version    string
	Running    bool
	PID        int // 0 while not running
	Restarts   int // successful restarts after the first start
	LastError  string
}

// Plugins reports every plugin process the host manages, in start order.
func (h *Host) Plugins() []Status {
	h.mu.Lock()
	procs := slices.Clone(h.procs)
	h.mu.Unlock()
	out := make([]Status, len(procs))
	for i, p := range procs {
		out[i] = p.status()
	}
	return out
}

// Close stops every plugin process and waits for them. Calls in flight and later
// calls get a transient error.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	procs := slices.Clone(h.procs)
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.close()
		}()
	}
	wg.Wait()
	h.wg.Wait()
	if err := os.RemoveAll(h.sockDir); err != nil {
		h.log.Warn("plugin host: remove the socket folder", "err", err)
	}
	return nil
}

// deadline gives a call its deadline: CallTimeout (or ctx's, if sooner); for a
// transfer, ctx's own deadline or else TransferTimeout.
func (h *Host) deadline(ctx context.Context, transfer bool) (context.Context, context.CancelFunc) {
	if transfer {
		if _, ok := ctx.Deadline(); ok {
			return context.WithCancel(ctx)
		}
		return context.WithTimeout(ctx, h.opts.TransferTimeout)
	}
	return context.WithTimeout(ctx, h.opts.CallTimeout)
}
