package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"hpcbot/store"
)

var cmdMigrate = &subcommand{
	name:    "migrate",
	summary: "create the store or upgrade it in place; import organizations",
	help: `Creates the bbolt store named by [store] path, or upgrades an older one in place.
It never drops data and does nothing the second time. Stop 'hpcbot run' first
to upgrade; importing organizations alone works while it runs (through its
control socket, as backup does: a running store's schema is current).

Organizations are imported from --orgs FILE, or from organizations.csv in the
working directory when that file exists (as the original bot did): a CSV with the
header label,name,alias,parent where parent names another label. Rows are
upserted by label; a bad row is reported with its line and nothing is written.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.orgs, "orgs", "", "CSV file of organizations to import (default: organizations.csv if present)")
	},
	run: func(o *options) error {
		if err := wantArgs(o, 0, "no arguments"); err != nil {
			return err
		}
		cfg, err := loadConfig(o.config)
		if err != nil {
			return err
		}
		orgs := o.orgs
		if orgs == "" {
			if _, err := os.Stat("organizations.csv"); err == nil {
				orgs = "organizations.csv"
			}
		}
		var f *os.File
		if orgs != "" {
			// Open the CSV before touching the store: a missing file changes nothing.
			if f, err = os.Open(orgs); err != nil {
				return fmt.Errorf("organizations: %w", err)
			}
			defer f.Close()
		}
		st, err := store.Open(cfg.Store.Path, store.Options{AllowOldSchema: true})
		if errors.Is(err, store.ErrLocked) && f != nil && controlAnswers(cfg.Store.Path) {
			fmt.Fprintf(o.stdout, "store %s is in use by the running hpcbot (so its schema is current)\n", cfg.Store.Path)
			n, err := importOrgsRemote(cfg.Store.Path, f)
			if err != nil {
				return fmt.Errorf("organizations from %s (nothing imported):\n%w", orgs, err)
			}
			fmt.Fprintf(o.stdout, "imported %d organizations from %s through the running hpcbot\n", n, orgs)
			return nil
		}
		if err != nil {
			return err
		}
		defer st.Close()
		from, to, err := st.Migrate()
		if err != nil {
			return fmt.Errorf("migrate %s: %w", cfg.Store.Path, err)
		}
		if from == to {
			fmt.Fprintf(o.stdout, "store %s is up to date (schema %d)\n", cfg.Store.Path, to)
		} else {
			fmt.Fprintf(o.stdout, "store %s migrated from schema %d to %d\n", cfg.Store.Path, from, to)
		}
		if f != nil {
			n, err := st.ImportOrganizationsCSV(f)
			if err != nil {
				return fmt.Errorf("organizations from %s (nothing imported):\n%w", orgs, errors.Join(err))
			}
			fmt.Fprintf(o.stdout, "imported %d organizations from %s\n", n, orgs)
		}
		return nil
	},
}
