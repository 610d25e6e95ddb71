package slurm

import (
	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/sshc"
)

// New returns the `slurm` scheduler plugin: the Slurm dialect over SSH (sshc).
func New(opts ...cluster.Option) *cluster.Scheduler {
	return cluster.New(NewDialect(), SSHTransport, opts...)
}

// SSHTransport opens the cluster's connection with sshc's defaults; it fits cluster.New.
func SSHTransport(c plugins.Cluster) (cluster.Transport, error) {
	return sshc.New(c.Connection, sshc.Options{})
}
