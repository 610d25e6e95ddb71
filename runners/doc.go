// Package runners holds hpcbot's runner plugins: the code that turns "this input
// file + this caption" into the exact argv to run on a cluster, a result
// whitelist and a help text, behind the plugins.Runner contract.
//
// Each runner is a plain Go type implementing plugins.Runner; the plugin
// machinery in package plugins serves it out of process (`hpcbot plugin serve
// <name>`). Plan is pure: it never touches a cluster, a file or the network,
// and the same request always gets the same answer. The optional calls of
// plugin protocol 2 read local files only: Check the downloaded input, Digest
// the fetched results.
//
//   - command (runners/command): the original bot's rules (program,
//     allowed_args as full-match regular expressions, default_args,
//     associations, description), with captions split like a shell would and
//     never expanded.
//   - xtb, orca, gaussian (runners/qcrun): command's rules under the
//     program's name, plus Check (refuse an input that cannot run, derive its
//     cores and memory) and Digest (summarize the output).
//
// Beside them, qc (runners/qc) reads the output of ORCA, Gaussian and xtb
// into a Digest (termination, final energy, optimization, frequencies, wall
// time, geometry file), for the runners that understand the chemistry.
//
// Runners know nothing of the bot, the store or the schedulers.
package runners
