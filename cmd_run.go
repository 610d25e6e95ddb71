package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"hpcbot/bot"
	"hpcbot/plugins"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// minPoliteFetch is the shortest poll interval run accepts without a warning.
const minPoliteFetch = 10 * time.Second

// stopTimeout bounds the whole shutdown after SIGTERM (issue: exit within 10 s).
const stopTimeout = 9 * time.Second

var cmdRun = &subcommand{
	name:    "run",
	summary: "run the bot until SIGTERM or SIGINT",
	help: `Runs the bot: opens the store (creating it on first use), starts the plugins
the configuration needs (one process per cluster), resumes every unfinished
calculation, and serves Telegram until SIGTERM or SIGINT. On a signal it stops
taking new work, lets the step in flight finish (or abandons it safely: it is
redone at the next start), and exits within 10 seconds.`,
	run: func(o *options) error {
		if err := wantArgs(o, 0, "no arguments"); err != nil {
			return err
		}
		// Flags and config.
		cfg, err := loadConfigWithToken(o.config)
		if err != nil {
			return err
		}
		// Logger.
		log, closeLog, err := newLogger(cfg, o.stderr)
		if err != nil {
			return &configError{err}
		}
		defer closeLog()
		if cfg.FetchTime.Min < minPoliteFetch {
			log.Warn("fetch_time below 10 s: every poll is a squeue (or qstat) on the cluster's controller, which HPC centres ask programs to keep to a minimum; AiiDA never polls more often than every 10 s", "fetch_time", cfg.FetchTime.Min)
		}

		for _, w := range cfg.ClearTextWarnings() {
			log.Warn(w)
		}

		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()

		// Store.
		if err := os.MkdirAll(cfg.DownloadPath, 0o700); err != nil {
			return fmt.Errorf("download_path: %w", err)
		}
		st, err := store.Open(cfg.Store.Path, store.Options{})
		if err != nil {
			return err
		}
		defer st.Close()
		log.Info("store open", "path", cfg.Store.Path)
		stopControl, err := serveControl(ctx, st, cfg.Store.Path, log.With("component", "control"))
		if err != nil {
			return err
		}
		defer stopControl()

		// The Telegram front end. It exists before the plugins so that warnings and
		// errors from every part (a plugin crashing, a cluster refusing our login)
		// also reach the log chat, scrubbed of secrets like the process log.
		b, err := bot.New(bot.Options{
			Bot:         cfg.Bot,
			Quota:       cfg.Quota,
			Language:    cfg.Language,
			MaxFileSize: cfg.MaxFileSize,
			Secrets:     cfg.Secrets(),
		}, st, log.With("component", "bot"))
		if err != nil {
			return &configError{err}
		}
		log = slog.New(slog.NewMultiHandler(log.Handler(), plugins.Redact(b.LogHandler(), cfg.Secrets()...)))

		// Plugins: one process per cluster, configured but not yet connected.
		sp, err := startPlugins(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer sp.host.Close()

		// The scheduler, fed by the bot and telling users through it.
		sch, err := scheduler.New(cfg.Scheduler(), st, sp.schedulers, sp.runners, b, log.With("component", "scheduler"),
			scheduler.WithPluginRestarts(sp.restarts))
		if err != nil {
			return err
		}
		if cfg.MetricsListen != "" {
			stopMetrics, err := serveMetrics(cfg.MetricsListen, sch, b.SendErrors, log.With("component", "metrics"))
			if err != nil {
				return err
			}
			defer stopMetrics()
		}

		// Daemon: both run until the signal; the first to fail stops the other.
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := make(chan error, 2)
		go func() { errc <- named("scheduler", sch.Run(runCtx)) }()
		go func() { errc <- named("bot", b.Run(runCtx, sch)) }()
		log.Info("hpcbot running", "version", version, "clusters", len(cfg.Clusters))

		first := <-errc
		cancel()
		if ctx.Err() != nil {
			log.Info("signal received, stopping")
		}
		var second error
		select {
		case second = <-errc:
		case <-time.After(stopTimeout):
			second = errors.New("did not stop within the stop timeout; exiting anyway (unfinished steps are redone at the next start)")
		}
		if err := errors.Join(first, second); err != nil {
			log.Error("stopped with an error", "err", err)
			return err
		}
		log.Info("stopped")
		return nil
	},
}

// named adds which part failed to a non-nil error.
func named(part string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", part, err)
}
