// Package plugins is the boundary between hpcbot's core and its out-of-process plugins.
//
// It holds the Go interfaces the core programs against (Scheduler, Runner), the
// configuration each plugin receives, the error kinds that cross the boundary, and
// (in files added beside this one) the gRPC protocol, the host that starts, checks
// and restarts plugin processes, and the serve side that plugin executables call.
//
// Scheduler plugins (slurm, pbs, ssh, local) live in subpackages of this package,
// with the SSH/SFTP client they share. Runner plugins live under ../runners.
// Nothing here knows about the bot or the store.
package plugins
