package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"hpcbot/plugins/kit"
)

// forCluster names cluster in a call's metadata (kit.ClusterMetadata), for a
// built-in runner's process that serves several clusters.
func forCluster(ctx context.Context, cluster string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, kit.ClusterMetadata, cluster)
}

// proc is one managed plugin: the current process (instance) and the restarts.
type proc struct {
	h                         *Host
	kind, name, cluster, path string
	args                      []string
	builtin                   bool
	log                       *slog.Logger
	stop                      chan struct{} // closed by close
	mu                        sync.Mutex
	config                    any       // Cluster or runnerConfig; sent by Configure after each start
	cur                       *instance // nil while the process is dead or restarting
	ready                     chan struct{}
	startErr                  error // the last restart failed with it; callers fail fast meanwhile
	lastErr                   string
	restarts                  int
	closed                    bool
	pluginName, version       string
}

// instance is one process of a plugin.
type instance struct {
	client  *goplugin.Client
	raw     any // *schedulerClient or *runnerClient
	conn    *grpc.ClientConn
	done    context.Context // ends when the process has exited
	pid     int
	tail    *tail // the process's stderr
	started time.Time
}

func newProc(h *Host, kind, name, cluster, path string, args []string, builtin bool, config any) *proc {
	return &proc{
		h: h, kind: kind, name: name, cluster: cluster, path: path, args: args, builtin: builtin,
		log:    h.log.With("plugin", name, "cluster", cluster, "kind", kind),
		stop:   make(chan struct{}),
		config: config,
		ready:  make(chan struct{}),
	}
}

// errf makes a transient error that names the plugin and its clusters.
func (p *proc) errf(err error, format string, args ...any) error {
	return &Error{Kind: KindTransient, Msg: fmt.Sprintf("%s plugin %q of cluster %s: ", p.kind, p.name, strings.Join(p.clusters(), ", ")) +
		fmt.Sprintf(format, args...), Err: err}
}

// clusters are the clusters the process serves, sorted.
func (p *proc) clusters() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clustersLocked()
}

func (p *proc) clustersLocked() []string {
	if rc, ok := p.config.(runnerConfigs); ok {
		return slices.Sorted(maps.Keys(rc))
	}
	return []string{p.cluster}
}

// spawn starts a process and brings it to service: handshake, Version, Configure.
func (p *proc) spawn(ctx context.Context) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, p.h.opts.StartTimeout)
	defer cancel()
	cmd := exec.Command(p.path, p.args...)
	// go-plugin adds the cookie (and, with SkipHostEnv, nothing of ours).
	cmd.Env = p.env()
	tl := &tail{}
	hl := &slogHCLog{log: p.log}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  handshake(ProtocolVersion),
		VersionedPlugins: clientSets(p.kind, protocolVersions()),
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		SkipHostEnv:      true,
		StartTimeout:     p.h.opts.StartTimeout,
		Stderr:           tl,
		SyncStderr:       &lineLogger{l: hl.Named("stderr").(*slogHCLog)},
		SyncStdout:       &lineLogger{l: hl.Named("stdout").(*slogHCLog)},
		Logger:           hl,
		// Configure carries credentials: the built-ins (go-plugin in Go, always)
		// authenticate both ends with one-time certificates. A drop-in may be written
		// in a language whose go-plugin has no AutoMTLS; it relies on the socket's
		// folder, which only hpcbot's user may enter (see env).
		AutoMTLS: p.builtin,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage))},
	})
	fail := func(err error) (*instance, error) {
		client.Kill()
		return nil, err
	}
	rpc, err := client.Client()
	if err != nil {
		return fail(startError(p.kind, p.name, p.path, err))
	}
	raw, err := rpc.Dispense(p.kind)
	if err != nil {
		return fail(startError(p.kind, p.name, p.path, err))
	}
	inst := &instance{client: client, raw: raw, tail: tl, started: time.Now()}
	if gc, ok := rpc.(*goplugin.GRPCClient); ok {
		inst.conn = gc.Conn
	}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	var name, version string
	switch c := raw.(type) {
	case *schedulerClient:
		inst.done = c.done
		name, version, err = c.version(ctx)
	case *runnerClient:
		inst.done = c.done
		name, version, err = c.version(ctx)
	}
	if err != nil {
		return fail(fmt.Errorf("%s plugin %q of cluster %s: version: %w", p.kind, p.name, p.cluster, err))
	}
	p.mu.Lock()
	config := p.config
	p.mu.Unlock()
	switch c := raw.(type) {
	case *schedulerClient:
		err = c.Configure(ctx, config.(Cluster))
	case *runnerClient:
		switch rc := config.(type) {
		case runnerConfig:
			err = c.Configure(ctx, rc.cluster, rc.rules)
		case runnerConfigs:
			// A built-in runner's process: every cluster's instance.
			for _, cl := range slices.Sorted(maps.Keys(rc)) {
				if err = c.Configure(forCluster(ctx, cl), cl, rc[cl]); err != nil {
					err = fmt.Errorf("cluster %s: %w", cl, err)
					break
				}
			}
		}
	}
	if err != nil {
		return fail(fmt.Errorf("%s plugin %q of cluster %s: configure: %w", p.kind, p.name, strings.Join(p.clusters(), ", "), err))
	}
	p.mu.Lock()
	p.pluginName, p.version = name, version
	p.mu.Unlock()
	return inst, nil
}

// env is the plugin process's whole environment: pluginEnvVars from hpcbot's,
// the passphrase variable the cluster's key_passphrase_env names (scheduler
// plugins only), the socket folder, hpcbot's pid, and the tests' extras.
func (p *proc) env() []string {
	names := slices.Clone(pluginEnvVars)
	p.mu.Lock()
	c, ok := p.config.(Cluster)
	p.mu.Unlock()
	if ok && c.Connection.KeyPassEnv != "" {
		names = append(names, c.Connection.KeyPassEnv)
	}
	var env []string
	for _, k := range names {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, envUnixSocketDir+"="+p.h.sockDir, EnvHostPID+"="+strconv.Itoa(os.Getpid()))
	return append(env, p.h.opts.env...)
}

// watch restarts the plugin each time its process exits, until close.
func (p *proc) watch(inst *instance) {
	defer p.h.wg.Done()
	delay := p.h.opts.RestartMin
	for {
		select {
		case <-inst.done.Done():
		case <-p.stop:
			return
		}
		if !p.markDead(inst) {
			return
		}
		inst.stop() // the process is gone; this reaps go-plugin's goroutines
		lived := time.Since(inst.started)
		if lived > p.h.opts.RestartMax {
			delay = p.h.opts.RestartMin
		}
		args := []any{"pid", inst.pid, "lived", lived.Round(time.Millisecond).String(), "restart_in", delay.String()}
		if tl := inst.tail.String(); tl != "" {
			args = append(args, "stderr", tl)
		}
		p.log.Warn("plugin process exited; restarting", args...)
		for {
			select {
			case <-time.After(delay):
			case <-p.stop:
				return
			}
			delay = min(2*delay, p.h.opts.RestartMax)
			next, err := p.spawn(context.Background())
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				if next != nil {
					next.stop()
				}
				return
			}
			if err != nil {
				p.startErr, p.lastErr = err, err.Error()
				close(p.ready) // waiting callers fail fast now
				p.ready = make(chan struct{})
				p.mu.Unlock()
				p.log.Warn("plugin restart failed", "err", err, "retry_in", delay.String())
				continue
			}
			p.cur, p.startErr = next, nil
			p.restarts++
			restarts := p.restarts
			close(p.ready)
			p.mu.Unlock()
			p.log.Info("plugin restarted", "pid", next.pid, "restarts", restarts)
			inst = next
			break
		}
	}
}

// markDead retires inst if it is still the current process, so that callers
// wait for the restart. It reports false once the proc is closed.
func (p *proc) markDead(inst *instance) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.cur == inst {
		p.cur = nil
		p.ready = make(chan struct{})
		p.lastErr = "process exited"
	}
	return true
}

// instance returns the running process, waiting while a restart is under way.
// It fails fast while the last restart attempt failed.
func (p *proc) instance(ctx context.Context, method string) (*instance, error) {
	for {
		p.mu.Lock()
		closed, cur, startErr, ready := p.closed, p.cur, p.startErr, p.ready
		p.mu.Unlock()
		switch {
		case closed:
			return nil, p.errf(nil, "%s: the plugin host is closed", method)
		case cur != nil && cur.done.Err() != nil:
			// Exited, and watch has not noticed yet.
			p.markDead(cur)
			continue
		case cur != nil:
			return cur, nil
		case startErr != nil:
			return nil, p.errf(startErr, "%s: plugin is down, restarting", method)
		}
		select {
		case <-ready:
		case <-p.stop:
		case <-ctx.Done():
			return nil, p.errf(context.Cause(ctx), "%s: waiting for the plugin to restart", method)
		}
	}
}

var errPluginExited = errors.New("plugin process exited")

// call runs one RPC with the host's deadline, on the current process. When the
// deadline passes or the process dies during the call, the caller gets a
// transient error at once.
func (p *proc) call(ctx context.Context, method string, transfer bool, fn func(ctx context.Context, raw any) error) error {
	ctx, cancel := p.h.deadline(ctx, transfer)
	defer cancel()
	inst, err := p.instance(ctx, method)
	if err != nil {
		return err
	}
	cctx, ccancel := context.WithCancelCause(ctx)
	defer ccancel(nil)
	stop := context.AfterFunc(inst.done, func() { ccancel(errPluginExited) })
	defer stop()
	err = fn(cctx, inst.raw)
	if err == nil {
		return nil
	}
	if cctx.Err() == nil && errors.Is(err, errUnavailable) && !p.alive(inst) {
		// The connection broke: the process is dying (or hangs). Wait until
		// go-plugin has seen it go, so that the next call waits for the restart.
		select {
		case <-inst.done.Done():
			p.markDead(inst)
		case <-time.After(settleWait):
			go inst.stop() // unresponsive: kill it, watch restarts it
		}
		return p.errf(err, "%s: the plugin process died or stopped answering during the call", method)
	}
	if cctx.Err() == nil {
		return err
	}
	if inst.done.Err() != nil {
		p.markDead(inst)
		return p.errf(errPluginExited, "%s: the plugin process exited during the call", method)
	}
	return p.errf(context.Cause(ctx), "%s", method)
}

// settleWait bounds the wait for go-plugin to notice a dead process, a health
// check, and a graceful stop.
const settleWait = 5 * time.Second

// alive asks the plugin's gRPC health service whether the process still answers.
// A plugin's own transient error and a broken connection share a gRPC code; this
// tells them apart.
func (p *proc) alive(inst *instance) bool {
	if inst.done.Err() != nil {
		return false
	}
	if inst.conn == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleWait)
	defer cancel()
	_, err := healthpb.NewHealthClient(inst.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: goplugin.GRPCServiceName})
	return err == nil
}

// stop ends the process: gracefully through go-plugin, and with SIGKILL if that
// does not finish in time (go-plugin's shutdown call has no deadline of its own).
func (i *instance) stop() {
	done := make(chan struct{})
	go func() {
		i.client.Kill()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(settleWait):
	}
	if i.pid > 0 && i.done.Err() == nil {
		if proc, err := os.FindProcess(i.pid); err == nil {
			_ = proc.Kill()
		}
	}
	<-done
}

func (p *proc) status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{
		Kind: p.kind, Name: p.name, Cluster: p.cluster, Clusters: p.clustersLocked(), Path: p.path, Builtin: p.builtin,
		PluginName: p.pluginName, Version: p.version,
		Running: p.cur != nil, Restarts: p.restarts, LastError: p.lastErr,
	}
	if p.cur != nil {
		st.PID = p.cur.pid
	}
	return st
}

// close stops watching and kills the process.
func (p *proc) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	cur := p.cur
	p.cur = nil
	p.mu.Unlock()
	if cur != nil {
		cur.stop()
	}
}
