package plugins

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"hpcbot/plugins/kit"
	pb "hpcbot/plugins/proto"
)

// The plugin tests use the test binary itself as the plugin executable: started
// as `<test binary> plugin serve <kind> <name>`, TestMain serves testRegistry
// through Serve, exactly as hpcbot's main does. The fakes below are test doubles
// for the plumbing only: they record every call they receive (calls.jsonl in the
// folder named by envRecord) and answer what the test asked for in
// <folder>/<Method>.json, once.

const (
	envRecord   = "HPCBOT_TEST_RECORD"   // folder of the call log and the replies
	envProtocol = "HPCBOT_TEST_PROTOCOL" // serve these protocol versions ("1", "1,2") instead of ours
	envLiar     = "HPCBOT_TEST_LIAR"     // serve a runner of protocol 1's calls only, announced as ours
)

func TestMain(m *testing.M) {
	if len(os.Args) == 5 && os.Args[1] == "plugin" && os.Args[2] == "serve" {
		versions := protocolVersions()
		if v := os.Getenv(envProtocol); v != "" {
			versions = nil
			for w := range strings.SplitSeq(v, ",") {
				n, err := strconv.Atoi(w)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				versions = append(versions, n)
			}
		}
		if os.Getenv(envLiar) != "" {
			impl := testRegistry.Runners[os.Args[4]](slog.Default())
			goplugin.Serve(&goplugin.ServeConfig{
				HandshakeConfig:  kit.Handshake(ProtocolVersion),
				VersionedPlugins: map[int]goplugin.PluginSet{ProtocolVersion: {PluginRunner: &v1RunnerPlugin{impl: impl}}},
				GRPCServer:       goplugin.DefaultGRPCServer,
			})
			os.Exit(0)
		}
		if err := serve(os.Args[3], os.Args[4], testRegistry, versions); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var testRegistry = Registry{
	Schedulers: map[string]func(*slog.Logger) Scheduler{
		"fake":        func(log *slog.Logger) Scheduler { return &fakeScheduler{name: "fake", rec: newRecorder(log)} },
		"fake-dropin": func(log *slog.Logger) Scheduler { return &fakeScheduler{name: "fake-dropin", rec: newRecorder(log)} },
		// fake-notail hides the fake's Tail, as a plugin built before Tail.
		"fake-notail": func(log *slog.Logger) Scheduler {
			return noTail{&fakeScheduler{name: "fake-notail", rec: newRecorder(log)}}
		},
	},
	Runners: map[string]func(*slog.Logger) Runner{
		"fake":  func(log *slog.Logger) Runner { return &fakeRunner{rec: newRecorder(log)} },
		"plain": func(log *slog.Logger) Runner { return plainOnly{&fakeRunner{rec: newRecorder(log)}} },
		// mirror answers from its configuration (host_shared_test.go).
		"mirror": func(*slog.Logger) Runner { return &mirrorRunner{} },
	},
}

// fakeReply is what a fake method does, written by the test as <Method>.json.
type fakeReply struct {
	Result  json.RawMessage `json:",omitempty"` // the method's result, as JSON of its Go type
	Kind    *Kind           `json:",omitempty"` // return &Error{Kind: *Kind, Msg: Msg}
	Msg     string          `json:",omitempty"` // with Kind nil and Msg set: a plain error
	Refusal *Refusal        `json:",omitempty"`
	Block   bool            `json:",omitempty"` // block until the call's ctx ends
	Kill    bool            `json:",omitempty"` // SIGKILL this process mid-call
}

// call is one line of calls.jsonl.
type call struct {
	Method string
	PID    int
	Req    json.RawMessage
}

type recorder struct {
	mu  sync.Mutex
	dir string
	log *slog.Logger
}

func newRecorder(log *slog.Logger) *recorder {
	return &recorder{dir: os.Getenv(envRecord), log: log}
}

func (r *recorder) do(ctx context.Context, method string, req, res any) error {
	r.log.Info("fake call", "method", method)
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	line, err := json.Marshal(call{Method: method, PID: os.Getpid(), Req: b})
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(r.dir, "calls.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	name := filepath.Join(r.dir, method+".json")
	b, err = os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil // zero result
	}
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil {
		return err
	}
	var rep fakeReply
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	switch {
	case rep.Kill:
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case rep.Block:
		<-ctx.Done()
		return ctx.Err()
	case rep.Kind != nil:
		return &Error{Kind: *rep.Kind, Msg: rep.Msg}
	case rep.Msg != "":
		return errors.New(rep.Msg)
	case rep.Refusal != nil:
		return fmt.Errorf("fake runner: %w", rep.Refusal)
	case rep.Result != nil && res != nil:
		return json.Unmarshal(rep.Result, res)
	}
	return nil
}

// configureRec records a Configure: Secret marshals as "[redacted]", so the
// password travels in a field of its own.
type configureRec struct {
	Cluster  Cluster
	Password string
}

type fakeScheduler struct {
	name string
	rec  *recorder
}

var (
	_ Scheduler = (*fakeScheduler)(nil)
	_ Versioner = (*fakeScheduler)(nil)
)

func (f *fakeScheduler) PluginVersion() (string, string) { return f.name, "fake-1.0" }

func (f *fakeScheduler) Configure(ctx context.Context, c Cluster) error {
	return f.rec.do(ctx, "Configure", configureRec{Cluster: c, Password: string(c.Connection.Password)}, nil)
}

func (f *fakeScheduler) Check(ctx context.Context) (res CheckResult, err error) {
	err = f.rec.do(ctx, "Check", nil, &res)
	return res, err
}

func (f *fakeScheduler) Stage(ctx context.Context, req StageRequest) error {
	return f.rec.do(ctx, "Stage", req, nil)
}

func (f *fakeScheduler) Submit(ctx context.Context, req SubmitRequest) (res SubmitResult, err error) {
	err = f.rec.do(ctx, "Submit", req, &res)
	return res, err
}

func (f *fakeScheduler) Poll(ctx context.Context, jobs []JobRef) (res []JobStatus, err error) {
	err = f.rec.do(ctx, "Poll", jobs, &res)
	return res, err
}

func (f *fakeScheduler) Cancel(ctx context.Context, job JobRef) error {
	return f.rec.do(ctx, "Cancel", job, nil)
}

func (f *fakeScheduler) Fetch(ctx context.Context, req FetchRequest) (res FetchResult, err error) {
	err = f.rec.do(ctx, "Fetch", req, &res)
	return res, err
}

func (f *fakeScheduler) Cleanup(ctx context.Context, folder string) error {
	return f.rec.do(ctx, "Cleanup", folder, nil)
}

func (f *fakeScheduler) Tail(ctx context.Context, req TailRequest) (res TailResult, err error) {
	err = f.rec.do(ctx, "Tail", req, &res)
	return res, err
}

// noTail is a scheduler without the optional Tail.
type noTail struct{ Scheduler }

// fakeRunner is not a Versioner: it reports the executable's build version.
type fakeRunner struct{ rec *recorder }

var _ Runner = (*fakeRunner)(nil)

type runnerConfigureRec struct {
	Cluster string
	Rules   []RunnerRule
}

func (f *fakeRunner) Configure(ctx context.Context, cluster string, rules []RunnerRule) error {
	return f.rec.do(ctx, "Configure", runnerConfigureRec{Cluster: cluster, Rules: rules}, nil)
}

func (f *fakeRunner) Info(ctx context.Context) (res RunnerInfo, err error) {
	err = f.rec.do(ctx, "Info", nil, &res)
	return res, err
}

func (f *fakeRunner) Plan(ctx context.Context, req PlanRequest) (res Plan, err error) {
	err = f.rec.do(ctx, "Plan", req, &res)
	return res, err
}

func (f *fakeRunner) Check(ctx context.Context, req CheckInputRequest) (res InputResources, err error) {
	err = f.rec.do(ctx, "Check", req, &res)
	return res, err
}

func (f *fakeRunner) Digest(ctx context.Context, req DigestRequest) (res Digest, err error) {
	err = f.rec.do(ctx, "Digest", req, &res)
	return res, err
}

// plainOnly hides the fake's Check and Digest: a protocol-2 plugin built from
// a Runner of protocol 1's contract.
type plainOnly struct{ Runner }

// v1RunnerPlugin serves only protocol 1's runner calls, whatever version is
// announced: the gRPC server of a plugin generated from protocol 1's .proto.
type v1RunnerPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl Runner
}

type v1RunnerServer struct {
	pb.UnimplementedRunnerServer
	s pb.RunnerServer
}

func (v v1RunnerServer) Version(ctx context.Context, r *pb.VersionRequest) (*pb.VersionReply, error) {
	return v.s.Version(ctx, r)
}

func (v v1RunnerServer) Configure(ctx context.Context, r *pb.ConfigureRunnerRequest) (*pb.Empty, error) {
	return v.s.Configure(ctx, r)
}

func (v v1RunnerServer) Info(ctx context.Context, r *pb.InfoRequest) (*pb.InfoReply, error) {
	return v.s.Info(ctx, r)
}

func (v v1RunnerServer) Plan(ctx context.Context, r *pb.PlanRequest) (*pb.PlanReply, error) {
	return v.s.Plan(ctx, r)
}

func (p *v1RunnerPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterRunnerServer(s, v1RunnerServer{s: kit.RunnerServer(p.impl, "liar")})
	return nil
}

func (p *v1RunnerPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("serve side only")
}

// Test side helpers.

// reply makes the fake's next call of method do rep.
func reply(t *testing.T, dir, method string, rep fakeReply) {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, method+".json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// result makes the fake's next call of method return v.
func result(t *testing.T, dir, method string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	reply(t, dir, method, fakeReply{Result: b})
}

// calls reads the fake's call log.
func calls(t *testing.T, dir string) []call {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "calls.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []call
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("calls.jsonl: %v", err)
		}
		out = append(out, c)
	}
	return out
}

// lastCall decodes the request of the fake's last call of method into req and
// returns the pid of the process that served it.
func lastCall(t *testing.T, dir, method string, req any) int {
	t.Helper()
	cs := calls(t, dir)
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i].Method == method {
			if req != nil {
				if err := json.Unmarshal(cs[i].Req, req); err != nil {
					t.Fatalf("%s request: %v", method, err)
				}
			}
			return cs[i].PID
		}
	}
	t.Fatalf("the plugin got no %s call", method)
	return 0
}

// syncBuffer collects the host's log for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records parses the JSON log lines.
func (s *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split([]byte(s.String()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}
