// Package plugins is the boundary between hpcbot's core and its out-of-process plugins.
//
// The contract itself (the Scheduler and Runner interfaces, the configuration
// each plugin receives, the error kinds that cross the boundary) and the serve
// side that plugin executables call are package kit, which a plugin imports
// without this package; the names are re-exported here for the core. This
// package holds hpcbot's side: the host that starts, checks and restarts
// plugin processes, its gRPC clients, and the registry of built-in plugins.
//
// Scheduler plugins (slurm, pbs, ssh, local) live in subpackages of this package,
// with the SSH/SFTP client they share. Runner plugins live under ../runners.
// Nothing here knows about the bot or the store.
package plugins
