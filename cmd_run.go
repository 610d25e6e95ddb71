package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"hpcbot/store"
)

var cmdRun = &subcommand{
	name:    "run",
	summary: "run the bot until SIGTERM or SIGINT",
	help: `Runs the bot: opens the store (creating it on first use), starts the plugins
the configuration needs, and serves Telegram until SIGTERM or SIGINT. On a signal it
stops taking new work, lets the step in flight finish, and exits.`,
	run: func(o *options) error {
		if err := wantArgs(o, 0, "no arguments"); err != nil {
			return err
		}
		cfg, err := loadConfig(o.config)
		if err != nil {
			return err
		}
		log, closeLog, err := newLogger(cfg, o.stderr)
		if err != nil {
			return &configError{err}
		}
		defer closeLog()

		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()

		if err := os.MkdirAll(cfg.DownloadPath, 0o750); err != nil {
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

		log.Info("hpcbot running", "version", version, "clusters", len(cfg.Clusters))
		<-ctx.Done()
		log.Info("signal received, stopping")
		return nil
	},
}
