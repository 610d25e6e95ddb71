// Package kit is what an hpcbot plugin imports: the contract between hpcbot
// and its plugins, and the functions that serve it. A plugin needs nothing
// else of hpcbot (hpcbot's host, which starts and watches plugin processes,
// is package plugins, which re-exports these names for hpcbot's own code).
//
// # A plugin in brief
//
// A drop-in plugin is an executable hpcbot starts itself, one process per cluster,
// and talks to over gRPC (hashicorp/go-plugin; the wire protocol is
// ../proto/hpcbot.proto). A drop-in lives in hpcbot's plugin_dir, named
// hpcbot-runner-<name> or hpcbot-scheduler-<name>.
//
// A runner turns a user's file and caption into a command line: implement
// Runner (Configure, Info, Plan) and, for protocol 2, Checker (read the input
// before it is uploaded) and Digester (summarize the results). Its main is
//
//	func main() {
//		if err := kit.ServeRunner(newRunner()); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
//
// A scheduler runs calculations on a cluster: implement Scheduler and call
// ServeScheduler. For a batch system reached over SSH, a cluster.Dialect (a
// pure pair of command builders and output parsers) run by cluster.New over
// the shared SSH transport does most of the work: see docs/plugins.md.
//
// The rules every call keeps:
//   - Errors carry a Kind (Errorf, Error): KindPermanent for a mistake that
//     retrying cannot fix (a bad configuration), KindAuth, KindNotFound; an
//     error without a kind is transient and retried later.
//   - A runner's refusal of a file is a *Refusal with one of the Refuse*
//     codes, an answer for the user, not a failure. Plan is pure.
//   - Calls come concurrently; every call honours its context's deadline.
//   - Log with slog.Default(): records reach hpcbot's log tagged with the
//     plugin and the cluster. Implement Versioner to name your version.
//
// Check a plugin with `hpcbot plugin test PATH`, the conformance suite that
// every built-in passes. A walk-through from nothing to a working drop-in,
// in Go and in Python: docs/plugins.md; the examples: examples/go-runner and
// examples/python-runner.
package kit
