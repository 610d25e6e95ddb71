package main

import "hpcbot/plugins"

var cmdPlugin = &subcommand{
	name:    "plugin",
	args:    "serve KIND NAME",
	summary: "serve a built-in plugin (hpcbot starts this itself)",
	help: `plugin serve KIND NAME serves the built-in plugin NAME of KIND (scheduler or
runner) over the go-plugin protocol on standard input and output. hpcbot run and
hpcbot check start it themselves, one process per cluster; it is not run by hand.`,
	run: func(o *options) error {
		if len(o.args) != 3 || o.args[0] != "serve" {
			return usagef("expected: plugin serve KIND NAME")
		}
		return plugins.Serve(o.args[1], o.args[2], builtins)
	},
}
