package main

import (
	"context"
	"fmt"
	"os"

	"hpcbot/plugins"
	"hpcbot/plugins/conformance"
)

var cmdPlugin = &subcommand{
	name:    "plugin",
	args:    "serve KIND NAME | test PATH | test KIND NAME",
	summary: "serve a built-in plugin (hpcbot starts this itself), or test a plugin's conformance",
	help: `plugin serve KIND NAME serves the built-in plugin NAME of KIND (scheduler or
runner) over the go-plugin protocol on standard input and output. hpcbot run and
hpcbot check start it themselves, one process per cluster; it is not run by hand.

plugin test PATH runs the conformance suite against the drop-in plugin PATH
(named hpcbot-scheduler-<name> or hpcbot-runner-<name>): the handshake and its
refusal of a protocol version it does not speak, every call's contract, the
kinds of its errors, deadlines and concurrent calls. plugin test KIND NAME runs
it against this executable's built-in plugin. It prints one line per check and
exits 1 when any failed. Scheduler calls that need a cluster (Stage, Submit,
Fetch...) are not exercised, except for the built-in local, which runs a real
job: see docs/plugins.md.`,
	run: func(o *options) error {
		switch {
		case len(o.args) == 3 && o.args[0] == "serve":
			return plugins.Serve(o.args[1], o.args[2], builtins)
		case len(o.args) == 2 && o.args[0] == "test":
			t, err := conformance.ForPath(o.args[1])
			if err != nil {
				return usagef("%v", err)
			}
			return pluginTest(o, t)
		case len(o.args) == 3 && o.args[0] == "test":
			kind, name := o.args[1], o.args[2]
			if !builtinHas(kind, name) {
				return usagef("no built-in %s plugin %q", kind, name)
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			return pluginTest(o, conformance.Target{Kind: kind, Name: name, Path: exe, Args: []string{"plugin", "serve", kind, name},
				Local: kind == plugins.PluginScheduler && name == "local"})
		}
		return usagef("expected: plugin serve KIND NAME, plugin test PATH or plugin test KIND NAME")
	},
}

func builtinHas(kind, name string) bool {
	for _, n := range builtins.Names(kind) {
		if n == name {
			return true
		}
	}
	return false
}

// pluginTest runs the conformance suite and prints its results.
func pluginTest(o *options, t conformance.Target) error {
	rs := conformance.Run(context.Background(), t, o.stderr)
	failed := 0
	for _, r := range rs {
		if r.Err != nil {
			failed++
			fmt.Fprintf(o.stdout, "FAIL %s\n     %v\n", r.Name, r.Err)
		} else {
			fmt.Fprintf(o.stdout, "ok   %s\n", r.Name)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s plugin %s: %d of %d checks failed", t.Kind, t.Path, failed, len(rs))
	}
	fmt.Fprintf(o.stdout, "%s plugin %s: all %d checks passed\n", t.Kind, t.Path, len(rs))
	return nil
}
