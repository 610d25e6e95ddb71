package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"hpcbot/bot"
	"hpcbot/plugins"
	"hpcbot/store"
)

// checkTimeout bounds each of check's network probes (Telegram, the cloud).
const checkTimeout = 30 * time.Second

var cmdCheck = &subcommand{
	name:    "check",
	summary: "prove everything a run needs: Telegram, the cloud storage, the store, every cluster",
	help: `Loads the configuration (reporting every problem), then proves each thing
'hpcbot run' needs, one line each:

  telegram   the bot token works (getMe) and names the bot (@username);
  storage    the Nextcloud account can write a file in base_path and delete it
             (or: not configured, results go as Telegram files);
  store      its schema (a store not created yet is reported, and is no failure:
             run 'hpcbot migrate', or 'hpcbot run' creates it);
  clusters   every plugin starts, prints its name and version, and runs its own
             check (for a scheduler plugin: connect to the cluster and report the
             scheduler's version).

Exits 1 naming each item that failed.`,
	run: func(o *options) error {
		if err := wantArgs(o, 0, "no arguments"); err != nil {
			return err
		}
		cfg, err := loadConfigWithToken(o.config)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.stdout, "config %s: ok (%d clusters)\n", o.config, len(cfg.Clusters))
		for _, w := range cfg.ClearTextWarnings() {
			fmt.Fprintf(o.stdout, "warning: %s\n", w)
		}
		var failed []string
		if !checkTelegram(o, cfg) {
			failed = append(failed, "telegram")
		}
		if !checkStorage(o, cfg) {
			failed = append(failed, "storage")
		}
		if !checkStore(o, cfg) {
			failed = append(failed, "store")
		}
		failed = append(failed, checkPlugins(o, cfg)...)
		if len(failed) > 0 {
			return fmt.Errorf("check failed: %s", strings.Join(failed, ", "))
		}
		return nil
	},
}

// checkTelegram asks the Bot API who the token belongs to.
func checkTelegram(o *options, cfg *Config) bool {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	me, err := bot.NewClient(cfg.Bot.APIURL, string(cfg.Bot.Token), nil).GetMe(ctx)
	if err != nil {
		fmt.Fprintf(o.stdout, "telegram %s: FAILED: %v\n", cfg.Bot.APIURL, err)
		return false
	}
	fmt.Fprintf(o.stdout, "telegram %s: ok, the token is bot @%s\n", cfg.Bot.APIURL, me.Username)
	return true
}

// checkStorage writes a file in base_path and deletes it.
func checkStorage(o *options, cfg *Config) bool {
	if !cfg.Storage.Enabled() {
		fmt.Fprintln(o.stdout, "storage: not configured: results are sent as Telegram files")
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	log := slog.New(plugins.Redact(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), cfg.Secrets()...))
	what := fmt.Sprintf("storage %s as %s", cfg.Storage.URL, cfg.Storage.User)
	nc, err := cfg.Storage.Client(log)
	if err != nil {
		fmt.Fprintf(o.stdout, "%s: FAILED: %v\n", what, err)
		return false
	}
	name, err := nc.Check(ctx)
	if err != nil {
		fmt.Fprintf(o.stdout, "%s: FAILED: %v\n", what, err)
		return false
	}
	fmt.Fprintf(o.stdout, "%s: ok, wrote and deleted %s\n", what, name)
	return true
}

// checkStore reports the store's schema; one not created yet is no failure.
func checkStore(o *options, cfg *Config) bool {
	if _, err := os.Stat(cfg.Store.Path); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(o.stdout, "store %s: not created yet: run `hpcbot migrate` (or `hpcbot run`, which creates it)\n", cfg.Store.Path)
		return true
	}
	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true, AllowOldSchema: true})
	if err != nil {
		fmt.Fprintf(o.stdout, "store %s: FAILED: %v\n", cfg.Store.Path, err)
		return false
	}
	v, err := st.SchemaVersion()
	st.Close()
	switch {
	case err != nil:
		fmt.Fprintf(o.stdout, "store %s: FAILED: %v\n", cfg.Store.Path, err)
		return false
	case v < store.LatestSchema():
		fmt.Fprintf(o.stdout, "store %s: FAILED: schema %d, needs %d: run `hpcbot migrate`\n", cfg.Store.Path, v, store.LatestSchema())
		return false
	}
	fmt.Fprintf(o.stdout, "store %s: ok (schema %d)\n", cfg.Store.Path, v)
	return true
}
