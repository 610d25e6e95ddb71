// Package pbs is the cluster.Dialect for PBS Professional/OpenPBS (flavor
// "pro", the default) and Torque (flavor "torque"): pure functions that build
// qsub, qstat and qdel commands and parse what they print. The generic
// scheduler in plugins/cluster runs them over SSH. Built-in plugin:
//
//	s := pbs.NewScheduler()           // the `pbs` scheduler plugin (cluster.Scheduler over sshc)
//	d, err := pbs.New(cluster.Flavor) // the dialect alone: "pro", "" or "torque"
//
// The generic Scheduler calls Configure with the cluster's settings: flavor
// ("pro" or "torque") and options.timezone, the IANA zone qstat's times are in
// (default: the bot host's).
//
// # Submitting
//
// Batch launch writes hpcbot-job.sh (BatchScript) and runs `cd <folder> && qsub
// hpcbot-job.sh`, printing qsub's answer after a marker so that ParseSubmit reads
// it with DefaultJobIDPattern whatever the cluster's job_id_regex. The script's directives are -N (JobName: letters, digits, _ .
// -, starting with a letter, at most 15 characters, the limit of Torque and older
// PBS), -S /bin/sh, -r n, -o/-e into the folder, -v HPCBOT_COMMENT=<comment>
// and one line per runner resource (ResourceDirectives: queue → -q, account →
// -A, project → -P on PBS Pro, every other key → -l key=value, validated; Torque
// rejects select/place and wants nodes=1:ppn=4). It then runs the argv, every
// word shell-quoted, in the folder with stdin from /dev/null, writes $? to
// .hpcbot-exitcode through a temporary file and a rename, and exits with it.
// Wrapper launch runs the quoted argv in the folder; ParseSubmit finds the id
// with the cluster's job_id_regex or DefaultJobIDPattern (a line that is only a
// PBS job id, so warnings around it do no harm). After an interrupted batch
// submission the generic code asks FindCommand (qselect -N <job name>, then
// qstat -f) and adopts the oldest job whose PBS_O_WORKDIR is the folder instead
// of submitting again. NothingSubmitted recognises "qsub: cannot connect to
// server", the one failure after which a new submission is safe.
//
// The job comment: neither PBS Pro/OpenPBS nor Torque lets a user set a job's
// comment attribute (it is NO_USER_SET in both servers' job attribute tables;
// the scheduler writes it). SubmitRequest.Comment therefore goes into the job's
// Variable_List as HPCBOT_COMMENT (qstat -f shows it, PBS accounting records do
// not). The job name carries the calculation number. Sites that need accounting
// by hpcbot user can give each user's runner an account resource (-A).
//
// # Polling
//
// One command per poll for all jobs: PBS Pro `qstat -x -f -F json <ids>` (-x
// includes finished jobs while the server keeps them, job_history_duration,
// two weeks by default, 24 h at some sites), Torque `qstat -f <ids>` (text,
// folded lines continue with a tab; completed jobs stay only for keep_completed).
// qstat exits non-zero when an id is unknown and still prints the others; those
// jobs are left out of the result, as are finished jobs without an exit status,
// and the generic code settles them with the exit-code file (it also splits a
// job list whose command would pass the kernel's argument limit). FinishedCommand
// is empty: PBS Pro's poll already has the history and Torque keeps none that a
// user can read. Invalid JSON from qstat (openpbs/openpbs#830, #1255, #2049,
// #2541) is read again line by line from its fixed layout.
//
// States, keeping the letter in JobStatus.Raw: Q W T H → pending (H, S, U with
// the reason); R E B S U → running; M and unknown letters → lost; F X (PBS Pro)
// and C (Torque) → by exit status. PBS Pro: substate 91 (deleted) or
// Exit_status 271 (256+SIGTERM, what qdel sends) → cancelled; 0 → succeeded;
// -29 (JOB_EXEC_KILL_WALLTIME) → timed_out; other negatives (JOB_EXEC_*, from
// OpenPBS src/include/job.h) → failed with their name; 256+N → failed, killed
// by signal N; 1-255 → failed with that exit code. Torque: 0 → succeeded;
// -10 (JOB_EXEC_OVERLIMIT) or 256+N with resources_used.walltime at or past
// Resource_List.walltime → timed_out; 271 otherwise → cancelled; the rest as
// for PBS Pro with Torque's JOB_EXEC_* names. Times (stime, obittime,
// start_time, comp_time, mtime) carry no zone and are read in Dialect.Location
// (time.Local by default).
//
// Cancel runs `qdel <id>`; CancelDone accepts exit 0 and the messages for a job
// that has already ended ("Unknown Job Id", "Job ... has finished", Torque's
// "invalid state for job - COMPLETE", "nonexistent job id"). Version: `qstat
// --version` prints "pbs_version = 19.0.0" (PBS Pro/OpenPBS) or "Version:
// 6.1.2" (Torque); a mismatch with the configured flavor is an error naming the
// right flavor.
//
// # What was and was not tried against a live server
//
// Nothing in this package has run against a live PBS Pro, OpenPBS or Torque
// server: none could be installed where it was written. What is verified:
//
//   - parsing, on qstat, qsub and qdel outputs that real servers printed and
//     their users published (PBS 19.0.0 and 2022.1.1 JSON; PBS Pro text from
//     2013 and recent OpenPBS; Torque text with completed jobs; qstat --version
//     of PBS 19.0.0 and Torque 6.1.2; qdel and qsub messages), each listed with
//     its source in testdata/README.md, plus synthetic variants marked as such;
//   - the submit, find and batch commands, by running them with /bin/sh against
//     stand-in qsub, qselect and qstat scripts that print recorded (qsub) or
//     hand-written (qselect, qstat for the lookup) answers;
//   - the batch script, by running it with /bin/sh: the program receives exactly
//     the argv words (quotes, $(), backticks, newlines, globs), nothing else
//     runs, the exit-code file is written and the script exits with the status;
//     and by reading its directives the way qsub does (nothing from the request
//     adds one);
//   - the dialect inside the generic cluster.Scheduler on this host (local
//     transport) with stand-in qsub/qstat for both flavors: Check, Stage, a
//     repeated Submit that returns the same job, Poll to a failed exit 3, and
//     Poll again once qstat has forgotten the job (the exit-code file answers);
//   - fuzzing of both parsers, ParseSubmit and BatchScript.
//
// Not verified: that qsub accepts the script and its directives (-S, -r n,
// relative -o/-e paths, -v with the comment) on each release; the exact exit
// codes and stderr texts of qstat and qdel for unknown or finished jobs on each
// release; what qstat -F json prints when every id is unknown; qselect -N/-x
// and the PBS_O_WORKDIR that qsub records behind symbolic links (the lookup
// after an interrupted submission); the time zone of qstat's times; array jobs (never
// submitted by hpcbot); and the state mapping's reading of substate and signal
// exit statuses, which comes from OpenPBS and Torque sources and site
// documentation, not from a run. The first use on a real cluster should submit
// a short job, poll it to completion, cancel one, and compare with this list.
package pbs
