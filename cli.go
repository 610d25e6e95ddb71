package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"hpcbot/store"
)

// command is one subcommand: its usage line, a paragraph of help, and what it does.
type subcommand struct {
	name, args, summary, help string
	// flags adds the command's own flags; --config is added for every command.
	flags func(fs *flag.FlagSet, o *options)
	run   func(o *options) error
}

// options carries what the flags set, and where output goes.
type options struct {
	config string
	orgs   string
	// report's flags
	reportFrom, reportTo, reportBy, reportFormat string

	args   []string
	stdout io.Writer
	stderr io.Writer
}

var commands = []*subcommand{cmdRun, cmdMigrate, cmdCheck, cmdBackup, cmdReport, cmdConfig, cmdVersion, cmdPlugin}

// usageError is a mistake on the command line; main exits 2 on it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Main runs hpcbot with args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c := find(args[1]); c != nil {
				printHelp(stdout, c)
				return 0
			}
		}
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c := find(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "hpcbot: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	o := &options{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("hpcbot "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := os.Getenv("HPCBOT_CONFIG")
	if def == "" {
		def = "hpcbot.toml"
	}
	fs.StringVar(&o.config, "config", def, "configuration file (env HPCBOT_CONFIG)")
	if c.flags != nil {
		c.flags(fs, o)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, c, fs)
			return 0
		}
		fmt.Fprintf(stderr, "hpcbot %s: %v\n", c.name, err)
		printHelp(stderr, c, fs)
		return 2
	}
	o.args = fs.Args()
	// Flags end at the first argument (`config convert --help`): a help flag
	// after it still asks for help.
	for _, a := range o.args {
		if a == "-h" || a == "-help" || a == "--help" {
			printHelp(stdout, c, fs)
			return 0
		}
	}
	return exitCode(stderr, c.name, c.run(o))
}

// exitCode is the one place that maps errors to exit codes:
// 0 success, 2 usage or configuration error, 1 anything that failed at run time.
func exitCode(stderr io.Writer, name string, err error) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	var ce *configError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "hpcbot %s: %v\nRun 'hpcbot %s --help' for usage.\n", name, err, name)
		return 2
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "hpcbot %s: configuration problems:\n", name)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return 2
	case errors.Is(err, store.ErrLocked):
		fmt.Fprintf(stderr, "hpcbot %s: %v\n", name, err)
		return 1
	default:
		fmt.Fprintf(stderr, "hpcbot %s: %v\n", name, err)
		return 1
	}
}

func find(name string) *subcommand {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "hpcbot runs calculations on HPC clusters for the members of a Telegram group.")
	fmt.Fprintln(w, "\nUsage: hpcbot <command> [--config PATH] [arguments]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --config PATH (default hpcbot.toml, or $HPCBOT_CONFIG) and --help.")
}

func printHelp(w io.Writer, c *subcommand, fss ...*flag.FlagSet) {
	fmt.Fprintf(w, "Usage: hpcbot %s [flags] %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if len(fss) > 0 {
		fs = fss[0]
	} else {
		var o options
		fs.String("config", "hpcbot.toml", "configuration file (env HPCBOT_CONFIG)")
		if c.flags != nil {
			c.flags(fs, &o)
		}
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func wantArgs(o *options, n int, what string) error {
	if len(o.args) != n {
		return usagef("expected %s, got %d argument(s)", what, len(o.args))
	}
	return nil
}
