package main

import (
	"fmt"
)

var cmdBackup = &subcommand{
	name:    "backup",
	args:    "FILE",
	summary: "write a consistent copy of the store, even while 'hpcbot run' uses it",
	help: `Writes a consistent snapshot of the store to FILE (through a temporary file,
so FILE is either the old copy or the complete new one). It works while the bot
runs: the copy is taken in one read transaction. Restore by stopping the bot and
putting the copy in place of the store file.`,
	run: func(o *options) error {
		if err := wantArgs(o, 1, "one argument, the backup file"); err != nil {
			return err
		}
		cfg, err := loadConfig(o.config)
		if err != nil {
			return err
		}
		st, err := openForBackup(cfg.Store.Path)
		if err != nil {
			return err
		}
		defer st.Close()
		n, err := st.BackupFile(o.args[0])
		if err != nil {
			return fmt.Errorf("backup to %s: %w", o.args[0], err)
		}
		fmt.Fprintf(o.stdout, "store %s copied to %s (%d bytes)\n", cfg.Store.Path, o.args[0], n)
		return nil
	},
}
