package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"hpcbot/plugins"
)

// startedPlugins are the plugins the configuration needs: one scheduler per
// cluster, and one runner per cluster and runner kind (in config order). The
// host runs each built-in runner kind in one process for all clusters.
type startedPlugins struct {
	host       *plugins.Host
	schedulers map[string]plugins.Scheduler
	runners    map[string][]plugins.Runner
}

// startPlugins starts and configures every plugin the configuration needs. A
// plugin that cannot start is an error: the operator must fix the config or the
// plugin folder before the bot runs.
func startPlugins(ctx context.Context, cfg *Config, log *slog.Logger) (*startedPlugins, error) {
	host, err := plugins.NewHost(plugins.HostOptions{
		PluginDir: cfg.PluginDir,
		Builtins:  builtins,
		Logger:    log.With("component", "plugins"),
	})
	if err != nil {
		return nil, err
	}
	sp := &startedPlugins{host: host, schedulers: map[string]plugins.Scheduler{}, runners: map[string][]plugins.Runner{}}
	var errs []error
	for _, cl := range cfg.Clusters {
		s, err := host.Scheduler(ctx, cl.Cluster)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: scheduler plugin %s: %w", cl.Label, cl.Scheduler, err))
			continue
		}
		sp.schedulers[cl.Label] = s
		for _, kind := range plugins.RunnerKinds(cl.Runners) {
			var rules []plugins.RunnerRule
			for _, r := range cl.Runners {
				if r.Runner == kind {
					rules = append(rules, r)
				}
			}
			r, err := host.Runner(ctx, cl.Label, kind, rules)
			if err != nil {
				errs = append(errs, fmt.Errorf("cluster %s: runner plugin %s: %w", cl.Label, kind, err))
				continue
			}
			sp.runners[cl.Label] = append(sp.runners[cl.Label], r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		host.Close()
		return nil, err
	}
	return sp, nil
}

// checkPlugins starts every plugin, prints its version and runs its own check.
// It returns the names of what failed ("plugins", "cluster hpc").
func checkPlugins(o *options, cfg *Config) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	log = slog.New(plugins.Redact(log.Handler(), cfg.Secrets()...))
	sp, err := startPlugins(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(o.stdout, "plugins: FAILED: %v\n", err)
		return []string{"plugins"}
	}
	defer sp.host.Close()
	var failed []string
	for _, cl := range cfg.Clusters {
		res, err := sp.schedulers[cl.Label].Check(ctx)
		if err != nil {
			fmt.Fprintf(o.stdout, "cluster %s (%s): FAILED: %v\n", cl.Label, cl.Scheduler, err)
			failed = append(failed, "cluster "+cl.Label)
			continue
		}
		fmt.Fprintf(o.stdout, "cluster %s (%s): reachable: %s", cl.Label, cl.Scheduler, res.Scheduler)
		if res.Host != "" {
			fmt.Fprintf(o.stdout, " on %s", res.Host)
		}
		fmt.Fprintln(o.stdout)
		for _, r := range sp.runners[cl.Label] {
			info, err := r.Info(ctx)
			if err != nil {
				fmt.Fprintf(o.stdout, "  runner: FAILED: %v\n", err)
				failed = append(failed, "runners of "+cl.Label)
				continue
			}
			for _, p := range info.Programs {
				fmt.Fprintf(o.stdout, "  runner %s %s: %s %v\n", info.Name, info.Version, p.Program, p.Associations)
			}
		}
	}
	for _, st := range sp.host.Plugins() {
		where := "built in"
		if !st.Builtin {
			where = st.Path
		}
		fmt.Fprintf(o.stdout, "plugin %s %s for %s: %s %s (%s, pid %d)\n", st.Kind, st.Name, strings.Join(st.Clusters, ", "), st.PluginName, st.Version, where, st.PID)
	}
	return failed
}

// restarts counts the restarts of cluster's plugin processes since the start
// (a built-in runner's process counts for every cluster it serves).
func (sp *startedPlugins) restarts(cluster string) int {
	n := 0
	for _, p := range sp.host.Plugins() {
		if slices.Contains(p.Clusters, cluster) {
			n += p.Restarts
		}
	}
	return n
}
