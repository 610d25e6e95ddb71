// Package runners holds hpcbot's runner plugins: the code that turns "this input
// file + this caption" into the exact argv to run on a cluster, a result
// whitelist and a help text, behind the plugins.Runner contract.
//
// Each runner is a plain Go type implementing plugins.Runner; the plugin
// machinery in package plugins serves it out of process (`hpcbot plugin serve
// <name>`). Runners are pure: they never touch a cluster, a file or the
// network, and the same request always gets the same answer.
//
//   - command (runners/command): the original bot's rules (program,
//     allowed_args as full-match regular expressions, default_args,
//     associations, description), with captions split like a shell would and
//     never expanded.
//
// Beside them, qc (runners/qc) reads the output of ORCA, Gaussian and xtb
// into a Digest (termination, final energy, optimization, frequencies, wall
// time, geometry file), for runners that understand the chemistry.
//
// Runners know nothing of the bot, the store or the schedulers.
package runners
