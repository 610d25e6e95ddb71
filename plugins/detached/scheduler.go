package detached

import (
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/sshc"
)

// NewLocal returns the `local` scheduler plugin: detached processes on this
// host, at most max_jobs at once (default: the number of CPUs).
func NewLocal(opts ...cluster.Option) *cluster.Scheduler {
	return cluster.New(NewLocalDialect(), cluster.NewLocalTransport, opts...)
}

// NewSSH returns the `ssh` scheduler plugin: detached processes on a remote host
// reached over SSH (one polite connection, see sshc).
func NewSSH(opts ...cluster.Option) *cluster.Scheduler {
	return cluster.New(NewSSHDialect(), sshc.Transport, opts...)
}
