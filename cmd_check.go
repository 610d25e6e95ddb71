package main

import (
	"errors"
	"fmt"
	"os"

	"hpcbot/store"
)

var cmdCheck = &subcommand{
	name:    "check",
	summary: "validate the configuration, the store, and every cluster's plugin",
	help: `Loads the configuration (reporting every problem), opens the store read-only
and reports its schema, then starts every plugin the configuration needs, prints
its name and version, and runs its own check (for a scheduler plugin: connect to
the cluster and report the scheduler's version). Exits 1 if anything fails.`,
	run: func(o *options) error {
		if err := wantArgs(o, 0, "no arguments"); err != nil {
			return err
		}
		cfg, err := loadConfig(o.config)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.stdout, "config %s: ok (%d clusters)\n", o.config, len(cfg.Clusters))
		for _, w := range cfg.ClearTextWarnings() {
			fmt.Fprintf(o.stdout, "warning: %s\n", w)
		}
		failed := 0
		if _, err := os.Stat(cfg.Store.Path); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(o.stdout, "store %s: not created yet: run `hpcbot migrate` (or `hpcbot run`, which creates it)\n", cfg.Store.Path)
			failed++
		} else if st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true, AllowOldSchema: true}); err != nil {
			fmt.Fprintf(o.stdout, "store %s: %v\n", cfg.Store.Path, err)
			failed++
		} else {
			v, err := st.SchemaVersion()
			st.Close()
			switch {
			case err != nil:
				fmt.Fprintf(o.stdout, "store %s: %v\n", cfg.Store.Path, err)
				failed++
			case v < store.LatestSchema():
				fmt.Fprintf(o.stdout, "store %s: schema %d, needs %d: run `hpcbot migrate`\n", cfg.Store.Path, v, store.LatestSchema())
				failed++
			default:
				fmt.Fprintf(o.stdout, "store %s: ok (schema %d)\n", cfg.Store.Path, v)
			}
		}
		failed += checkPlugins(o, cfg)
		if failed > 0 {
			return fmt.Errorf("%d check(s) failed", failed)
		}
		return nil
	},
}
