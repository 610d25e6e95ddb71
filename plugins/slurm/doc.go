// Package slurm is the cluster.Dialect for Slurm: pure command builders and
// output parsers, tested on output captured from a real Slurm (testdata/).
//
// Launch "batch" writes hpcbot-job.sh (#SBATCH lines for the job name, the
// comment, stdout/stderr files and the runner's resources; the program's exit
// code goes to .hpcbot-exitcode) and submits it with `sbatch --parsable`.
// Launch "wrapper" runs the program in the folder and reads the job id from its
// output with the cluster's job_id_regex (default `Submitted batch job (\d+)`).
//
// Poll is one `squeue --states=all --jobs=a,b,c` (a single id is passed twice,
// as AiiDA does, so that squeue does not fail on an id it has forgotten). Jobs
// squeue does not show, or shows finished without an exit code, are looked up in
// one command that runs `sacct -X -j a,b,c` and then `scontrol show job -o` for
// every id sacct did not answer (sacct fails with "Slurm accounting storage is
// disabled" without slurmdbd; scontrol knows a job until MinJobAge expires).
// After that the generic code reads the exit-code files. A job is never called
// succeeded because it left the queue.
//
// Every command sets SLURM_TIME_FORMAT=standard and asks for fields separated by
// "^^^" (squeue) or "|" with --parsable2 (sacct), after AiiDA's slurm plugin. Times
// without a zone are read in the plugin host's local zone.
package slurm
