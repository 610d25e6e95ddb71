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
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

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

// rawPlugin hands the suite the plugin's gRPC connection itself.
type rawPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (rawPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the conformance suite serves nothing")
}

func (rawPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// start starts the plugin offering versions; stop kills it.
func (s *suite) start(versions []int) (*grpc.ClientConn, int, func(), error) {
	sets := map[int]goplugin.PluginSet{}
	for _, v := range versions {
		sets[v] = goplugin.PluginSet{s.t.Kind: rawPlugin{}}
	}
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  uint(slices.Max(versions)),
			MagicCookieKey:   plugins.CookieKey,
			MagicCookieValue: plugins.CookieValue,
		},
		VersionedPlugins: sets,
		Cmd:              exec.Command(s.t.Path, s.t.Args...),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		StartTimeout:     CallTimeout,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: s.log, Level: hclog.Info}),
		Stderr:           s.log,
	})
	rpc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, 0, nil, err
	}
	raw, err := rpc.Dispense(s.t.Kind)
	if err != nil {
		c.Kill()
		return nil, 0, nil, fmt.Errorf("dispense %s: %w", s.t.Kind, err)
	}
	return raw.(*grpc.ClientConn), c.NegotiatedVersion(), c.Kill, nil
}

// noCookie runs the executable as a person would: it must exit with an error.
func (s *suite) noCookie() error {
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.t.Path, s.t.Args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, plugins.CookieKey+"=") && !strings.HasPrefix(e, "PLUGIN_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("run without %s, it was still running after %s (it must exit at once, saying it is started by hpcbot)", plugins.CookieKey, CallTimeout)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			return err
		}
		return fmt.Errorf("run without %s, it exited 0 (it must exit non-zero, saying it is started by hpcbot); output: %q", plugins.CookieKey, out)
	}
	return nil
}

// refusesUnknownVersion offers a version no plugin speaks: starting must fail.
func (s *suite) refusesUnknownVersion() error {
	const bogus = 9999
	_, _, stop, err := s.start([]int{bogus})
	if err == nil {
		stop()
		return fmt.Errorf("offered only protocol version %d, the plugin accepted it", bogus)
	}
	if !strings.Contains(err.Error(), "incompatible API version") {
		return fmt.Errorf("offered only protocol version %d: want a handshake announcing another version, got: %w", bogus, err)
	}
	return nil
}

// offerOnly offers one version: the plugin speaks it or announces another
// (which the client refuses); anything else is a failure.
func (s *suite) offerOnly(v int) error {
	_, got, stop, err := s.start([]int{v})
	if err != nil {
		if strings.Contains(err.Error(), "incompatible API version") {
			return nil
		}
		return err
	}
	defer stop()
	if got != v {
		return fmt.Errorf("offered only version %d, negotiated %d", v, got)
	}
	return nil
}

// knownCodes are the gRPC codes the contract maps to a kind
// (plugins/grpc_errors.go: codeKind; plugins/kit/grpc_errors.go: kindCode), besides the context's own.
var knownCodes = []codes.Code{codes.FailedPrecondition, codes.InvalidArgument, codes.OutOfRange,
	codes.Unimplemented, codes.AlreadyExists, codes.PermissionDenied, codes.Unauthenticated,
	codes.NotFound, codes.Unavailable, codes.ResourceExhausted, codes.Aborted}

// callErr checks an error a call returned: one of the known codes, and an
// answer before the deadline.
func callErr(method string, ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s did not answer within %s", method, CallTimeout)
	}
	st, _ := status.FromError(err)
	if !slices.Contains(knownCodes, st.Code()) {
		return fmt.Errorf("%s returned %s %q: an error must carry a kind (FAILED_PRECONDITION permanent, UNAVAILABLE transient, PERMISSION_DENIED auth, NOT_FOUND), see plugins/proto/README.md", method, st.Code(), st.Message())
	}
	return nil
}

func permanent(method string, ctx context.Context, err error) error {
	if err == nil {
		return fmt.Errorf("%s accepted it", method)
	}
	if e := callErr(method, ctx, err); e != nil {
		return e
	}
	switch c := status.Code(err); c {
	case codes.FailedPrecondition, codes.InvalidArgument:
		return nil
	default:
		return fmt.Errorf("%s refused it with %s %q: a configuration mistake is permanent (FAILED_PRECONDITION)", method, c, status.Convert(err).Message())
	}
}

func call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, CallTimeout)
}

// text checks a text field of a reply: valid UTF-8, at most 256 bytes.
func text(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8: %q", field, s)
	}
	if len(s) > 256 {
		return fmt.Errorf("%s is %d bytes long (at most 256)", field, len(s))
	}
	return nil
}

func version(ctx context.Context, fn func(context.Context, *pb.VersionRequest, ...grpc.CallOption) (*pb.VersionReply, error)) error {
	cctx, cancel := call(ctx)
	defer cancel()
	r, err := fn(cctx, &pb.VersionRequest{})
	if err != nil {
		if e := callErr("Version", cctx, err); e != nil {
			return e
		}
		return fmt.Errorf("Version: %w", err)
	}
	if r.GetName() == "" || r.GetVersion() == "" {
		return fmt.Errorf("Version answered name %q version %q: both must be set", r.GetName(), r.GetVersion())
	}
	return errors.Join(text("Version name", r.GetName()), text("Version version", r.GetVersion()))
}

var refusalCodes = []string{plugins.RefuseNoProgram, plugins.RefuseUnknownProgram, plugins.RefuseArgNotAllowed,
	plugins.RefuseNoInput, plugins.RefuseBadCaption, plugins.RefuseInputEmpty, plugins.RefuseInputEncoding,
	plugins.RefuseInputBinary, plugins.RefuseXYZHeader, plugins.RefuseXYZCount, plugins.RefuseXYZAtom,
	plugins.RefuseTooManyCores, plugins.RefuseTooMuchMemory, plugins.RefuseCaptionCores}

func refusal(method string, r *pb.Refusal) error {
	if !slices.Contains(refusalCodes, r.GetCode()) {
		return fmt.Errorf("%s refused with code %q, which hpcbot cannot tell the user (known: %s)", method, r.GetCode(), strings.Join(refusalCodes, ", "))
	}
	return text(method+" refusal detail", r.GetDetail())
}

// The rule the runner is configured with: an extension no real program uses.
const (
	testProgram = "hpcbot-conformance-program"
	testExt     = ".hpcbotconf"
	testInput   = "input" + testExt
)

func (s *suite) runner(ctx context.Context, c pb.RunnerClient, negotiated int) {
	s.check("Version names the plugin and its version", func() error { return version(ctx, c.Version) })
	s.check("Configure refuses a rule without a program (permanent error)", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Configure(cctx, &pb.ConfigureRunnerRequest{Cluster: "conformance", Rules: []*pb.RunnerRule{
			{Runner: s.t.Name, Associations: []string{testExt}}}})
		return permanent("Configure", cctx, err)
	})

	s.check("Configure accepts a plain rule", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Configure(cctx, &pb.ConfigureRunnerRequest{Cluster: "conformance", Rules: []*pb.RunnerRule{
			{Runner: s.t.Name, Program: testProgram, Associations: []string{testExt}}}})
		if err != nil {
			return errors.Join(callErr("Configure", cctx, err), fmt.Errorf("Configure: %s", status.Convert(err).Message()))
		}

		return nil
	})
	s.check("Info names the runner and lists well-formed programs", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		r, err := c.Info(cctx, &pb.InfoRequest{})
		if err != nil {
			return errors.Join(callErr("Info", cctx, err), fmt.Errorf("Info: %w", err))
		}
		if r.GetName() == "" {
			return errors.New("Info answered no name")
		}
		for _, p := range r.GetPrograms() {
			if p.GetProgram() == "" {
				return errors.New("Info lists a program without a name")
			}
			for _, a := range p.GetAssociations() {
				if !strings.HasPrefix(a, ".") {
					return fmt.Errorf("Info: program %s: association %q does not start with a dot", p.GetProgram(), a)
				}
			}
		}
		return nil
	})
	plan := func(req *pb.PlanRequest) (*pb.PlanReply, error) {
		cctx, cancel := call(ctx)
		defer cancel()
		r, err := c.Plan(cctx, req)
		if err != nil {
			return nil, errors.Join(callErr("Plan", cctx, err), fmt.Errorf("Plan(%q, %q) returned an error, not a plan or a refusal: %s", req.GetFileName(), req.GetCaption(), status.Convert(err).Message()))
		}
		switch o := r.GetOutcome().(type) {
		case *pb.PlanReply_Refusal:
			return r, refusal("Plan", o.Refusal)
		case *pb.PlanReply_Plan:
			p := o.Plan
			if p.GetProgram() == "" || len(p.GetArgv()) == 0 {
				return r, fmt.Errorf("Plan(%q, %q): a plan without a program or argv", req.GetFileName(), req.GetCaption())
			}
			if strings.Contains(req.GetCaption(), "{}") && !slices.ContainsFunc(p.GetArgv(), func(a string) bool { return strings.Contains(a, req.GetFileName()) }) {
				return r, fmt.Errorf("Plan(%q, %q): argv %q does not name the input file", req.GetFileName(), req.GetCaption(), p.GetArgv())
			}
			if l := p.GetLaunch(); l != "" && l != plugins.LaunchBatch && l != plugins.LaunchWrapper {
				return r, fmt.Errorf("Plan: launch %q is neither %s nor %s", l, plugins.LaunchBatch, plugins.LaunchWrapper)
			}
			return r, nil
		}
		return r, fmt.Errorf("Plan(%q, %q) answered neither a plan nor a refusal", req.GetFileName(), req.GetCaption())
	}
	requests := []*pb.PlanRequest{{FileName: testInput}, {FileName: "input.unknownext"}, {FileName: testInput, Caption: testProgram + " {}"}}
	s.check("Plan answers a plan or a known refusal", func() error {
		var errs []error
		for _, req := range requests {
			_, err := plan(req)
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	s.check("Plan refuses a caption with an unbalanced quote", func() error {
		r, err := plan(&pb.PlanRequest{FileName: testInput, Caption: testProgram + ` "{}`})
		if err != nil {
			return err
		}
		if r.GetRefusal() == nil {
			return fmt.Errorf(`Plan(%q, %q) answered a plan: want a refusal (%s)`, testInput, testProgram+` "{}`, plugins.RefuseBadCaption)
		}
		return nil
	})
	s.check("Plan is pure: the same request, sequentially and concurrently, gets the same answer", func() error {
		want := make([]*pb.PlanReply, len(requests))
		for i, req := range requests {
			r, err := plan(req)
			if err != nil {
				return err
			}
			want[i] = r
		}
		var wg sync.WaitGroup
		errs := make([]error, 32)
		for g := range errs {
			wg.Go(func() {
				i := g % len(requests)
				r, err := plan(requests[i])
				if err == nil && !proto.Equal(r, want[i]) {
					err = fmt.Errorf("Plan(%q, %q) answered %v, then %v", requests[i].GetFileName(), requests[i].GetCaption(), want[i], r)
				}
				errs[g] = err
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	if negotiated >= 2 {
		s.check("Check reads an empty input: accepted or a known refusal", func() error {
			dir, err := os.MkdirTemp("", "hpcbot-conformance-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			path := filepath.Join(dir, testInput)
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				return err
			}
			cctx, cancel := call(ctx)
			defer cancel()
			r, err := c.Check(cctx, &pb.CheckInputRequest{FileName: testInput, Path: path, Program: testProgram})
			if err != nil {
				return errors.Join(callErr("Check", cctx, err), fmt.Errorf("Check of an empty input returned an error, not an answer: %s", status.Convert(err).Message()))
			}
			switch o := r.GetOutcome().(type) {
			case *pb.CheckInputReply_Refusal:
				return refusal("Check", o.Refusal)
			case *pb.CheckInputReply_Accepted:
				a := o.Accepted
				if a.GetTasks() < 0 || a.GetCpusPerTask() < 0 || a.GetMemoryMb() < 0 {
					return fmt.Errorf("Check accepted with negative resources %v", a)
				}
				return nil
			}
			return errors.New("Check answered neither accepted nor a refusal")
		})
		s.check("Digest of an empty result folder: no digest, or one with a known termination", func() error {
			dir, err := os.MkdirTemp("", "hpcbot-conformance-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cctx, cancel := call(ctx)
			defer cancel()
			r, err := c.Digest(cctx, &pb.DigestRequest{Dir: dir, InputFile: testInput, Program: testProgram})
			if err != nil {
				return errors.Join(callErr("Digest", cctx, err), fmt.Errorf("Digest: %s", status.Convert(err).Message()))
			}
			d := r.GetDigest()
			if d == nil {
				return nil
			}
			switch d.GetTermination() {
			case plugins.TerminationNone:
				return nil
			case plugins.TerminationNormal:
				return fmt.Errorf("Digest of an empty folder says %q: a run whose output is missing did not end normally", d.GetTermination())
			case plugins.TerminationFailed, plugins.TerminationUnfinished:
			default:
				return fmt.Errorf("Digest termination %q is none of normal, failed, unfinished, none", d.GetTermination())
			}
			if d.GetEnergy() != "" {
				return fmt.Errorf("Digest of an empty folder gives an energy %q: a digest never guesses", d.GetEnergy())
			}
			return errors.Join(text("Digest termination_line", d.GetTerminationLine()), text("Digest program", d.GetProgram()))
		})
	}
	s.check("still answers Version after every call", func() error { return version(ctx, c.Version) })
}

func (s *suite) scheduler(ctx context.Context, c pb.SchedulerClient) {
	s.check("Version names the plugin and its version", func() error { return version(ctx, c.Version) })
	s.check("Configure refuses a cluster without upload_path (permanent error)", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Configure(cctx, &pb.ConfigureSchedulerRequest{Cluster: &pb.Cluster{Label: "conformance", Scheduler: s.t.Name}})
		return permanent("Configure", cctx, err)
	})
	dir, err := os.MkdirTemp("", "hpcbot-conformance-")
	if err != nil {
		s.results = append(s.results, Result{"temporary folder", err})
		return
	}
	defer os.RemoveAll(dir)
	// An empty known_hosts: a host key check would refuse any host.
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600); err != nil {
		s.results = append(s.results, Result{"temporary folder", err})
		return
	}
	// Port 1 on the loopback: nothing listens, so connecting is refused at once.
	cluster := &pb.Cluster{Label: "conformance", Scheduler: s.t.Name, UploadPath: dir,
		Connection: &pb.Connection{Host: "127.0.0.1", Port: 1, User: "hpcbot-conformance", Password: "conformance", KnownHosts: filepath.Join(dir, "known_hosts")}}
	s.check("Configure accepts a cluster whose host does not answer (it does not connect)", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Configure(cctx, &pb.ConfigureSchedulerRequest{Cluster: cluster})
		if err != nil {
			return errors.Join(callErr("Configure", cctx, err), fmt.Errorf("Configure: %s", status.Convert(err).Message()))
		}
		return nil
	})
	checkOnce := func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Check(cctx, &pb.CheckRequest{})
		return callErr("Check", cctx, err)
	}
	s.check("Check answers before its deadline, with an error of a kind when the host does not answer", checkOnce)
	s.check("concurrent Version and Check calls are all answered", func() error {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for g := range errs {
			wg.Go(func() {
				if g%2 == 0 {
					errs[g] = version(ctx, c.Version)
				} else {
					errs[g] = checkOnce()
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	s.check("Poll of no jobs answers no statuses", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		r, err := c.Poll(cctx, &pb.PollRequest{})
		if err != nil {
			return callErr("Poll", cctx, err)
		}
		if n := len(r.GetStatuses()); n != 0 {
			return fmt.Errorf("Poll of no jobs answered %d statuses", n)
		}
		return nil
	})
	s.check("Tail is optional: Unimplemented, or an answer of a kind before its deadline when the host does not answer", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		r, err := c.Tail(cctx, &pb.TailRequest{CalcId: 1, JobId: "1", Folder: "conformance_tail", JobName: "hpcbot-conformance", MaxLines: 30, MaxBytes: 4096})
		if err != nil {
			return callErr("Tail", cctx, err)
		}
		return tailReply(r, 30, 4096)
	})
	if s.t.Local {
		s.check("runs a real job: Stage, Submit (twice: one job), Poll to the end, Tail, Fetch, Cleanup (twice)", func() error {
			return s.localJob(ctx, c, dir)
		})
	}
	s.check("still answers Version after every call", func() error { return version(ctx, c.Version) })
}

// tailReply checks a Tail answer: a known stream, within the caps asked for,
// valid UTF-8 without control characters other than newline and tab.
func tailReply(r *pb.TailReply, maxLines, maxBytes int) error {
	t := r.GetText()
	switch {
	case r.GetStream() != plugins.StreamOutput && r.GetStream() != plugins.StreamError:
		return fmt.Errorf("Tail answered stream %q: want %q or %q", r.GetStream(), plugins.StreamOutput, plugins.StreamError)
	case !utf8.ValidString(t):
		return fmt.Errorf("Tail text is not valid UTF-8: %q", t)
	case len(t) > maxBytes || strings.Count(t, "\n") >= maxLines:
		return fmt.Errorf("Tail text is %d bytes, %d lines: asked for at most %d bytes, %d lines", len(t), strings.Count(t, "\n")+1, maxBytes, maxLines)
	case strings.ContainsFunc(t, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		return fmt.Errorf("Tail text holds control characters: %q", t)
	}
	return nil
}

// localJob runs `wc ./input.txt` through a scheduler that runs jobs on this
// host (configured with upload_path under dir).
func (s *suite) localJob(ctx context.Context, c pb.SchedulerClient, dir string) error {
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, d := range []string{in, out} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(in, "input.txt"), []byte("H 0 0 0\n"), 0o600); err != nil {
		return err
	}
	const folder = "conformance_1"
	do := func(method string, fn func(context.Context) error) error {
		cctx, cancel := call(ctx)
		defer cancel()
		if err := fn(cctx); err != nil {
			return errors.Join(callErr(method, cctx, err), fmt.Errorf("%s: %s", method, status.Convert(err).Message()))
		}
		return nil
	}
	if err := do("Stage", func(cctx context.Context) error {
		_, err := c.Stage(cctx, &pb.StageRequest{CalcId: 1, LocalDir: in, Folder: folder})
		return err
	}); err != nil {
		return err
	}
	submit := &pb.SubmitRequest{CalcId: 1, Folder: folder, Argv: []string{"wc", "./input.txt"},
		Launch: plugins.LaunchBatch, JobName: "hpcbot-conformance"}
	var first, again *pb.SubmitReply
	if err := do("Submit", func(cctx context.Context) (err error) { first, err = c.Submit(cctx, submit); return err }); err != nil {
		return err
	}
	if err := do("Submit", func(cctx context.Context) (err error) { again, err = c.Submit(cctx, submit); return err }); err != nil {
		return err
	}
	if first.GetJobId() == "" || again.GetJobId() != first.GetJobId() || !again.GetExisting() {
		return fmt.Errorf("Submit twice for one folder: job %q, then %q (existing %v): a repeat must return the first job with existing set",
			first.GetJobId(), again.GetJobId(), again.GetExisting())
	}
	ref := &pb.JobRef{CalcId: 1, JobId: first.GetJobId(), Folder: folder, Launch: plugins.LaunchBatch}
	var st *pb.JobStatus
	for end := time.Now().Add(CallTimeout); ; {
		var r *pb.PollReply
		if err := do("Poll", func(cctx context.Context) (err error) {
			r, err = c.Poll(cctx, &pb.PollRequest{Jobs: []*pb.JobRef{ref}})
			return err
		}); err != nil {
			return err
		}
		if len(r.GetStatuses()) != 1 {
			return fmt.Errorf("Poll of one job answered %d statuses", len(r.GetStatuses()))
		}
		st = r.GetStatuses()[0]
		if plugins.State(st.GetState()).Final() {
			break
		}
		if time.Now().After(end) {
			return fmt.Errorf("the job (wc) had not finished after %s: state %q", CallTimeout, st.GetState())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.GetState() != string(plugins.StateSucceeded) || st.ExitCode == nil || st.GetExitCode() != 0 {
		return fmt.Errorf("the job (wc) ended %q, exit code %v, reason %q: want succeeded with 0", st.GetState(), st.ExitCode, st.GetReason())
	}
	// Tail (optional): the end of wc's output, or Unimplemented.
	tctx, tcancel := call(ctx)
	tail, err := c.Tail(tctx, &pb.TailRequest{CalcId: 1, JobId: first.GetJobId(), Folder: folder, JobName: submit.JobName, MaxLines: 5, MaxBytes: 1024})
	tcancel()
	switch {
	case status.Code(err) == codes.Unimplemented:
	case err != nil:
		return errors.Join(callErr("Tail", tctx, err), fmt.Errorf("Tail of the finished job: %s", status.Convert(err).Message()))
	case tail.GetStream() != plugins.StreamOutput || !strings.Contains(tail.GetText(), "./input.txt"):
		return fmt.Errorf("Tail of the finished job: %q from stream %q, want wc's output from %q", tail.GetText(), tail.GetStream(), plugins.StreamOutput)
	default:
		if err := tailReply(tail, 5, 1024); err != nil {
			return err
		}
	}
	var fetched *pb.FetchReply
	if err := do("Fetch", func(cctx context.Context) (err error) {
		fetched, err = c.Fetch(cctx, &pb.FetchRequest{Folder: folder, LocalDir: out, Extensions: []string{".out"}})
		return err
	}); err != nil {
		return err
	}
	for _, sk := range fetched.GetSkipped() {
		if !slices.Contains(plugins.SkipCodes, sk.GetCode()) {
			return fmt.Errorf("Fetch skipped %s with code %q: want one of %v (the reason text goes to the log only)", sk.GetPath(), sk.GetCode(), plugins.SkipCodes)
		}
	}
	if !slices.ContainsFunc(fetched.GetSkipped(), func(sk *pb.Skipped) bool { return sk.GetPath() == "input.txt" }) {
		return fmt.Errorf("Fetch of *.out only did not report input.txt as skipped (code %s): skipped %v", plugins.SkipNotWhitelisted, fetched.GetSkipped())
	}
	found := false
	for _, f := range fetched.GetFiles() {
		if !filepath.IsLocal(f) {
			return fmt.Errorf("Fetch lists %q, not a name inside the local folder", f)
		}
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			return fmt.Errorf("Fetch lists %s: %w", f, err)
		}
		found = found || strings.Contains(string(b), "./input.txt")
	}
	if !found {
		return fmt.Errorf("Fetch copied %q: none holds wc's output", fetched.GetFiles())
	}
	for range 2 {
		if err := do("Cleanup", func(cctx context.Context) error {
			_, err := c.Cleanup(cctx, &pb.CleanupRequest{Folder: folder})
			return err
		}); err != nil {
			return fmt.Errorf("%w (a missing folder is not an error)", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, folder)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("Cleanup left %s behind (%v)", filepath.Join(dir, folder), err)
	}
	return nil
}
