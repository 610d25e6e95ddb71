package plugins

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"hpcbot/plugins/kit"
)

// Registry lists the plugins built into this executable. main fills it and hands
// the same value to Serve (the plugin side of `hpcbot plugin serve`) and to
// HostOptions.Builtins (so the host knows which names it serves itself).
// Each constructor is called once, in the plugin process, with a logger that
// writes to the host's log.
type Registry struct {
	Schedulers map[string]func(log *slog.Logger) Scheduler
	Runners    map[string]func(log *slog.Logger) Runner
}

// has reports whether the registry builds a plugin of that kind and name.
func (r Registry) has(kind, name string) bool {
	switch kind {
	case PluginScheduler:
		_, ok := r.Schedulers[name]
		return ok
	case PluginRunner:
		_, ok := r.Runners[name]
		return ok
	}
	return false
}

// Names lists the names the registry serves for a kind (PluginScheduler,
// PluginRunner), sorted.
func (r Registry) Names(kind string) []string {
	var names []string
	switch kind {
	case PluginScheduler:
		for n := range r.Schedulers {
			names = append(names, n)
		}
	case PluginRunner:
		for n := range r.Runners {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Serve is `hpcbot plugin serve <kind> <name>`: it serves the built-in plugin
// of that kind and name from reg over stdin/stdout the go-plugin way, and
// returns when the host closes the plugin. kind is PluginScheduler or PluginRunner.
func Serve(kind, name string, reg Registry) error {
	return serve(kind, name, reg, nil)
}

// serve is Serve with the protocol versions to offer (nil: ours; tests offer others).
func serve(kind, name string, reg Registry, versions []int) error {
	if os.Getenv(cookieKey) != cookieValue {
		return fmt.Errorf("plugin serve %s %s: %w", kind, name, errNotStartedByHost)
	}
	if kind != PluginScheduler && kind != PluginRunner {
		return fmt.Errorf("plugin serve: unknown plugin kind %q (want %s or %s)", kind, PluginScheduler, PluginRunner)
	}
	if !reg.has(kind, name) {
		return fmt.Errorf("plugin serve: no built-in %s plugin %q (built in: %s)",
			kind, name, strings.Join(reg.Names(kind), ", "))
	}
	build := func(log *slog.Logger) any { return reg.Runners[name](log) }
	if kind == PluginScheduler {
		build = func(log *slog.Logger) any { return reg.Schedulers[name](log) }
	}
	return kit.ServeBuiltin(kind, name, build, versions)
}

// ServeScheduler and ServeRunner serve a drop-in plugin: see package kit,
// which a plugin imports instead of this package.
var (
	ServeScheduler = kit.ServeScheduler
	ServeRunner    = kit.ServeRunner
)

var errNotStartedByHost = kit.ErrNotStartedByHost
