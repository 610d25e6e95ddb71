package slurm

import (
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/sshc"
)

// New returns the `slurm` scheduler plugin: the Slurm dialect over SSH (sshc).
func New(opts ...cluster.Option) *cluster.Scheduler {
	return cluster.New(NewDialect(), sshc.Transport, opts...)
}
