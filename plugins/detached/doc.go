// Package detached is the cluster.Dialect of hosts without a batch scheduler:
// the plain `ssh` plugin (a remote workstation reached over SSH) and the `local`
// plugin (this host). A calculation runs as a detached process group
// (setsid nohup sh .hpcbot-run.sh), so it survives the bot, the plugin and the
// SSH connection.
//
// # Files in a calculation folder
//
//	.hpcbot-run.sh     the job script: records the pid, runs the program, records its exit code
//	.hpcbot-pid        "PID BOOT_ID START_TICKS START_UNIX" of the job's shell
//	.hpcbot-exitcode   "CODE END_UNIX", renamed into place when the program ends
//	.hpcbot-cancelled  written by Cancel before it signals the process group
//	<job name>.out/.err  the program's stdout and stderr
//
// # Job ids
//
// The job id is the calculation's folder name. It is unique per calculation
// and stays meaningful across reboots, unlike a pid. Whether the recorded pid
// is still our job is checked with kill -0, the boot id
// (/proc/sys/kernel/random/boot_id) and the process's start time (field 22 of
// /proc/PID/stat); a zombie counts as dead. Hosts without /proc fall back to kill -0.
//
// # The queue (max_jobs)
//
// With a cap on concurrent jobs (local: max_jobs, default the number of CPUs;
// ssh: only when max_jobs is set) Submit does not start the job but enqueues it
// as a file <upload_path>/.hpcbot-queue/pending/<unix nanoseconds>+<folder>.
// A dispatcher (a shell script run under flock(1) on .hpcbot-queue/lock) starts
// the oldest pending jobs while fewer than max_jobs are running (entries in
// .hpcbot-queue/running). It runs after every submit, when a job ends, and on
// every poll, so a queue survives a restart of the bot, the plugin or the host.
// A queued job polls as pending.
package detached
