// Package conformance is the suite `hpcbot plugin test` runs against a plugin
// executable, in any language: it starts the program the way hpcbot does
// (go-plugin's handshake over gRPC, see ../proto/README.md) and checks what
// the contract promises without a cluster to talk to.
//
// Every plugin: it refuses to serve when not started by hpcbot (no magic
// cookie), negotiates each protocol version hpcbot offers or refuses it
// cleanly, never claims a version it was not offered, answers Version with a
// name and a version, answers every call before a deadline, and every error it
// returns carries one of the gRPC codes the contract gives a kind (see
// proto/README.md), never UNKNOWN or INTERNAL (what an uncaught exception
// becomes).
//
// Runners: Configure refuses a rule without a program with a permanent error
// and accepts a plain rule; Info names the runner; Plan answers a plan or a
// refusal (never an error) with a known refusal code, refuses a caption with
// an unbalanced quote, names the input file in its argv when the caption has {}, gives the same answer
// to the same request (Plan is pure), also when called concurrently; with
// protocol 2, Check reads an empty input and Digest an empty result folder
// without failing, with known codes and termination values.
//
// Schedulers: Configure refuses a cluster without upload_path with a permanent
// error and accepts one whose host does not answer (Configure does not
// connect); Check against that host ends before its deadline with an error of
// a kind (for `local`, which needs no host, it succeeds); concurrent calls are
// answered. Staging, submitting, polling and fetching need a real cluster,
// except for a scheduler that runs jobs on this host (Target.Local, the
// built-in `local`): the suite runs `wc` through it, submitting twice (one
// job), polling to success, fetching and cleaning up twice. For the others
// they are tested by hpcbot's own end-to-end tests, not here.
package conformance

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"hpcbot/plugins"
	pb "hpcbot/plugins/proto"
)

// Target is the plugin executable under test.
type Target struct {
	Kind string   // plugins.PluginScheduler or plugins.PluginRunner
	Path string   // the executable
	Args []string // its arguments (a built-in: plugin serve KIND NAME)
	// Name is the plugin's name: for a runner, the `runner` of the rules
	// Configure gets.
	Name string
	// Local says the scheduler runs jobs on this host without a cluster (the
	// built-in `local`): the suite then runs a real job through every call.
	Local bool
}

// ForPath makes the Target of a drop-in from its file name hpcbot-<kind>-<name>.
func ForPath(path string) (Target, error) {
	base := filepath.Base(path)
	for _, kind := range []string{plugins.PluginScheduler, plugins.PluginRunner} {
		if name, ok := strings.CutPrefix(base, "hpcbot-"+kind+"-"); ok && name != "" {
			return Target{Kind: kind, Path: path, Name: name}, nil
		}
	}
	return Target{}, fmt.Errorf("%s: a plugin's file name is hpcbot-scheduler-<name> or hpcbot-runner-<name>", path)
}

// Result is one check: Err is nil when it passed.
type Result struct {
	Name string
	Err  error
}

// CallTimeout is the deadline of every call the suite makes; a plugin that has
// not answered by then fails the check.
const CallTimeout = 20 * time.Second

// Run runs the suite and returns every check's result in order. log gets the
// plugin's own log lines (nil: discarded).
func Run(ctx context.Context, t Target, log io.Writer) []Result {
	if log == nil {
		log = io.Discard
	}
	s := &suite{t: t, log: &lockedWriter{w: log}}
	s.check("refuses to serve when not started by hpcbot", s.noCookie)
	s.check("never claims a protocol version it was not offered", s.refusesUnknownVersion)
	for _, v := range plugins.ProtocolVersions() {
		s.check(fmt.Sprintf("negotiates protocol version %d or refuses it", v), func() error { return s.offerOnly(v) })
	}
	conn, version, stop, err := s.start(plugins.ProtocolVersions())
	if err != nil {
		s.results = append(s.results, Result{"starts with every version hpcbot speaks offered", err})
		return s.results
	}
	defer stop()
	s.check("starts with every version hpcbot speaks offered", func() error { return nil })
	switch t.Kind {
	case plugins.PluginRunner:
		s.runner(ctx, pb.NewRunnerClient(conn), version)
	case plugins.PluginScheduler:
		s.scheduler(ctx, pb.NewSchedulerClient(conn))
	}
	return s.results
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	return slices.ContainsFunc(rs, func(r Result) bool { return r.Err != nil })
}

// lockedWriter serializes writes: go-plugin writes the plugin's log and
// stderr from goroutines of its own.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type suite struct {
	t       Target
	log     io.Writer
	results []Result
}

func (s *suite) check(name string, fn func() error) {
	s.results = append(s.results, Result{Name: name, Err: fn()})
}
