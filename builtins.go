package main

import (
	"log/slog"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/detached"
	"hpcbot/plugins/pbs"
	"hpcbot/plugins/slurm"
	"hpcbot/runners/command"
	"hpcbot/runners/qcrun"
)

// builtins are the plugins served by this executable (`hpcbot plugin serve`).
// The host starts each scheduler in a process of its own per cluster, and each
// runner in one process for every cluster that uses it (one configured
// instance per cluster inside).
var builtins = plugins.Registry{
	Schedulers: map[string]func(*slog.Logger) plugins.Scheduler{
		"local": func(l *slog.Logger) plugins.Scheduler { return detached.NewLocal(cluster.WithLogger(l)) },
		"ssh":   func(l *slog.Logger) plugins.Scheduler { return detached.NewSSH(cluster.WithLogger(l)) },
		"slurm": func(l *slog.Logger) plugins.Scheduler { return slurm.New(cluster.WithLogger(l)) },
		"pbs":   func(l *slog.Logger) plugins.Scheduler { return pbs.NewScheduler(cluster.WithLogger(l)) },
	},
	Runners: map[string]func(*slog.Logger) plugins.Runner{
		"command":      func(*slog.Logger) plugins.Runner { return command.New() },
		qcrun.XTB:      func(*slog.Logger) plugins.Runner { return qcrun.New(qcrun.XTB) },
		qcrun.ORCA:     func(*slog.Logger) plugins.Runner { return qcrun.New(qcrun.ORCA) },
		qcrun.Gaussian: func(*slog.Logger) plugins.Runner { return qcrun.New(qcrun.Gaussian) },
	},
}
