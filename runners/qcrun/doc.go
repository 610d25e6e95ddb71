// Package qcrun is the program-aware runners "xtb", "orca" and "gaussian":
// the command runner's caption and allowed_args rules (package
// runners/command, NewNamed), plus the two calls of plugin protocol 2.
//
// One package serves the three names because they differ only in which input
// lines Check reads and which output Digest parses, and runners/qc already
// chooses its parser by program; three packages would repeat the same
// plumbing three times.
//
// # Configuration
//
//	[[clusters.runners]]
//	runner       = "orca"
//	program      = "/opt/orca/orca_submit"
//	associations = [".inp"]
//	allowed_args = ["{}"]
//	max_cores    = 32      # refuse %pal nprocs above this; 0: no limit
//	max_memory   = "128GB" # refuse %maxcore × nprocs above this; "": no limit
//
// A caption may name the program by its program value, by the runner's name
// or by the program's base name: `orca {}` runs /opt/orca/orca_submit.
//
// Plan also asks for the files the program writes (ORCA <stem>.out, .log and
// .xyz; Gaussian <stem>.log and .out; xtb xtbopt.xyz, xtbopt.log and
// xtblast.xyz) whatever the global whitelists say.
//
// # Check (before upload)
//
// Every input: an empty (or blank) file, a byte order mark (UTF-8 or UTF-16)
// and a file that is not text (a zero byte: UTF-16 without a mark, or binary)
// are refused. Then per program:
//
//   - ORCA: "%pal nprocs N" (on one line or over a %pal ... end block) or a
//     "! PALn" keyword gives the tasks (MPI processes); "%maxcore M" (MB per
//     process) × tasks the job's memory.
//   - Gaussian: "%nprocshared=N" (or %nprocs, %nproc, or a %cpu list) gives
//     the threads of the one process; "%mem=" (KB, MB, GB, TB, or KW, MW, GW,
//     TW of 8-byte words; a bare number is words, as Gaussian reads it) the
//     job's memory. A multi-step job's largest values count.
//   - xtb: an .xyz input's first line must be the atom count and the atom
//     lines (element and three coordinates) must agree with it; "-P N" or
//     "--parallel N" in the caption gives the threads.
//
// A value above the rule's max_cores or max_memory is refused with its line
// and the limit (codes plugins.RefuseInput*). Check reads at most
// MaxCheckBytes of the input, line by line with a bounded line; a longer
// input is accepted as far as it was read.
//
// # Digest (after fetch)
//
// The program's output is looked for by its usual names among the fetched
// files: ORCA <stem>.out, <stem>.log, then the job's standard output; Gaussian
// <stem>.log, <stem>.out, then standard output; xtb the job's standard output
// followed by its standard error (xtb prints its termination line there),
// then <stem>.out. The first that runners/qc recognises gives the digest;
// none gives "no summary". The geometry file is the one the program named
// (xtbopt.xyz) or, for an ORCA optimization, <stem>.xyz, and only when it
// is among the fetched files. Files are opened inside the results folder
// only (os.OpenInRoot) and streamed; the call stops at its deadline.
package qcrun
