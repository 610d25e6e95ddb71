package kit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Versioner is implemented by plugins that report their own name and version to
// `hpcbot check`. A plugin without it reports the name it is served under and the
// build version of its executable.
type Versioner interface {
	PluginVersion() (name, version string)
}

func versionOf(impl any, name string) (string, string) {
	if v, ok := impl.(Versioner); ok {
		return v.PluginVersion()
	}
	return name, BuildVersion()
}

// BuildVersion is the main module's version, or its VCS revision for a
// development build.
func BuildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// ErrNotStartedByHost is returned when a plugin executable is run by hand.
var ErrNotStartedByHost = errors.New("this is an hpcbot plugin: hpcbot starts it itself (hpcbot run, hpcbot check); it is not run by hand")

// ServeScheduler serves impl as a drop-in scheduler plugin. A drop-in is a
// program of its own, installed in the plugin folder as hpcbot-scheduler-<name>
// (or hpcbot-runner-<name>, with ServeRunner); hpcbot starts one process per
// cluster that names it. Its main is
//
//	func main() {
//		if err := kit.ServeScheduler(newMyScheduler()); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
//
// It returns when hpcbot closes the plugin, or at once with an error when the
// program was not started by hpcbot. Log with slog.Default(): records reach
// hpcbot's log tagged with plugin and cluster. impl may implement Versioner.
// Plugins in other languages: see ../proto/README.md.
func ServeScheduler(impl Scheduler) error {
	return serveDropIn(PluginScheduler, impl, nil)
}

// ServeRunner serves impl as a drop-in runner plugin, like ServeScheduler. impl
// may implement Checker and Digester (protocol 2); one that does not accepts
// every input unchecked and has no summary.
func ServeRunner(impl Runner) error {
	return serveDropIn(PluginRunner, nil, impl)
}

func serveDropIn(kind string, sched Scheduler, run Runner) error {
	name := strings.TrimPrefix(filepath.Base(os.Args[0]), DropInPrefix(kind))
	if os.Getenv(CookieKey) != CookieValue {
		return fmt.Errorf("%s plugin %s: %w", kind, name, ErrNotStartedByHost)
	}
	hl, _ := pluginLoggers(name)
	serveSet(serverSets(kind, sched, run, nil, name, ProtocolVersions()), hl)
	return nil
}

// ServeBuiltin is hpcbot's own `hpcbot plugin serve KIND NAME`: it serves the
// plugin build makes (a Scheduler for PluginScheduler, a Runner for
// PluginRunner) under name, offering versions (nil: ProtocolVersions). build
// gets a logger that writes to hpcbot's log. A drop-in calls ServeScheduler
// or ServeRunner instead.
func ServeBuiltin(kind, name string, build func(*slog.Logger) any, versions []int) error {
	if os.Getenv(CookieKey) != CookieValue {
		return fmt.Errorf("plugin serve %s %s: %w", kind, name, ErrNotStartedByHost)
	}
	if versions == nil {
		versions = ProtocolVersions()
	}
	hl, log := pluginLoggers(name)
	var sets map[int]goplugin.PluginSet
	switch impl := build(log).(type) {
	case Scheduler:
		if kind != PluginScheduler {
			return fmt.Errorf("plugin serve %s %s: the plugin is a scheduler", kind, name)
		}
		sets = serverSets(kind, impl, nil, nil, name, versions)
	case Runner:
		if kind != PluginRunner {
			return fmt.Errorf("plugin serve %s %s: the plugin is a runner", kind, name)
		}
		// The host may send several clusters' calls to this process:
		// each cluster gets an instance of its own.
		sets = serverSets(kind, nil, impl, func() Runner { return build(log).(Runner) }, name, versions)
	default:
		return fmt.Errorf("plugin serve %s %s: %T is neither a Scheduler nor a Runner", kind, name, impl)
	}
	serveSet(sets, hl)
	return nil
}

// pluginLoggers makes the plugin process's logger: JSON lines on the process's
// real stderr, which go-plugin on the host side parses and hands to the host's
// logger, tagged with plugin and cluster. It also becomes slog's default, so a
// plugin that logs with slog.Default() is heard too.
func pluginLoggers(name string) (hclog.Logger, *slog.Logger) {
	hl := hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Debug,
		Output:     os.Stderr, // captured now: go-plugin replaces os.Stderr later
		JSONFormat: true,
	})
	log := slog.New(&hclogHandler{l: hl})
	slog.SetDefault(log)
	return hl, log
}

// serveSet serves one plugin set per protocol version; go-plugin announces the
// highest version the host also offers.
func serveSet(sets map[int]goplugin.PluginSet, hl hclog.Logger) {
	go exitWithHost(hl)
	highest := 0
	for v := range sets {
		highest = max(highest, v)
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  Handshake(uint(highest)),
		VersionedPlugins: sets,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize))
			return grpc.NewServer(opts...)
		},
		Logger: hl,
	})
}

// EnvHostPID carries hpcbot's pid to its plugin processes.
const EnvHostPID = "HPCBOT_PLUGIN_HOST_PID"

// exitWithHost ends the plugin process when hpcbot is gone (killed without the
// chance to stop its plugins): a plugin left behind would keep its cluster
// connection open. An orphan is re-parented, so the parent pid changes; a plugin
// that was orphaned before it got here sees a parent of 1 that is not its host.
// (A drop-in started through a wrapper that does not exec has the wrapper as
// parent and is watched through it.)
func exitWithHost(hl hclog.Logger) {
	parent := os.Getppid()
	host, err := strconv.Atoi(os.Getenv(EnvHostPID))
	if err == nil && parent == 1 && host != 1 {
		hl.Error("hpcbot is gone; plugin exiting", "host_pid", host)
		os.Exit(1)
	}
	for range time.Tick(time.Second) {
		if os.Getppid() != parent {
			hl.Error("hpcbot is gone; plugin exiting", "parent_pid", parent)
			os.Exit(1)
		}
	}
}
