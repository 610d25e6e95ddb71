package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"hpcbot/plugins"
	"hpcbot/plugins/conformance"
)

// TestPluginConformance runs `hpcbot plugin test`'s suite against every
// built-in plugin, served by the built binary as hpcbot serves it.
func TestPluginConformance(t *testing.T) {
	for _, kind := range []string{plugins.PluginScheduler, plugins.PluginRunner} {
		names := builtins.Names(kind)
		if len(names) == 0 {
			t.Fatalf("no built-in %s plugins", kind)
		}
		for _, name := range names {
			t.Run(kind+"/"+name, func(t *testing.T) {
				t.Parallel()
				var log bytes.Buffer
				rs := conformance.Run(context.Background(), conformance.Target{
					Kind: kind, Name: name, Path: binary, Args: []string{"plugin", "serve", kind, name},
					Local: kind == plugins.PluginScheduler && name == "local"}, &log)
				if len(rs) < 10 {
					t.Errorf("only %d checks ran: %v", len(rs), rs)
				}
				for _, r := range rs {
					if r.Err != nil {
						t.Errorf("%s: %v", r.Name, r.Err)
					}
				}
				if t.Failed() {
					t.Logf("plugin log:\n%s", log.String())
				}
			})
		}
	}
}

// TestPluginTestCommand runs the subcommand itself: a built-in passes, and a
// file name that is no plugin's is a usage error.
func TestPluginTestCommand(t *testing.T) {
	code, out, errOut := runMain(t, "plugin", "test", "runner", "command")
	if code != 0 || !strings.Contains(out, "all ") || strings.Contains(out, "FAIL") {
		t.Fatalf("plugin test runner command: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runMain(t, "plugin", "test", "/bin/true")
	if code != 2 || !strings.Contains(errOut, "hpcbot-runner-<name>") {
		t.Fatalf("plugin test /bin/true: exit %d, stderr %q; want a usage error naming the file names", code, errOut)
	}
}

const brokenRunnerArg = "conformance-broken-runner"

// brokenRunner breaks the runner contract in three ways the suite must name:
// Configure accepts a rule without a program, Plan fails a caption it cannot
// split with an error instead of a refusal, and a plan for a caption with {}
// does not name the input.
type brokenRunner struct{}

func (brokenRunner) Configure(context.Context, string, []plugins.RunnerRule) error { return nil }
func (brokenRunner) Info(context.Context) (plugins.RunnerInfo, error) {
	return plugins.RunnerInfo{Name: "broken", Version: "0"}, nil
}
func (brokenRunner) Plan(_ context.Context, req plugins.PlanRequest) (plugins.Plan, error) {
	if strings.Count(req.Caption, `"`)%2 == 1 {
		return plugins.Plan{}, errors.New("cannot split the caption")
	}
	return plugins.Plan{Program: "broken", Argv: []string{"broken"}}, nil
}

func serveBrokenRunner() {
	if err := plugins.ServeRunner(brokenRunner{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

const brokenSchedulerArg = "conformance-broken-scheduler"

// brokenScheduler keeps the scheduler contract that needs no cluster except
// Tail, which names a stream that is neither "output" nor "error".
type brokenScheduler struct{ plugins.Scheduler }

func (brokenScheduler) Configure(_ context.Context, c plugins.Cluster) error {
	if c.UploadPath == "" {
		return plugins.Errorf(plugins.KindPermanent, "upload_path is empty")
	}
	return nil
}
func (brokenScheduler) Check(context.Context) (plugins.CheckResult, error) {
	return plugins.CheckResult{}, plugins.Errorf(plugins.KindTransient, "connection refused")
}
func (brokenScheduler) Poll(_ context.Context, jobs []plugins.JobRef) ([]plugins.JobStatus, error) {
	return make([]plugins.JobStatus, len(jobs)), nil
}
func (brokenScheduler) Tail(context.Context, plugins.TailRequest) (plugins.TailResult, error) {
	return plugins.TailResult{Text: "last line", Stream: "stdout"}, nil
}

func serveBrokenScheduler() {
	if err := plugins.ServeScheduler(brokenScheduler{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestPluginConformanceCatchesABrokenTail: a scheduler whose Tail breaks the
// contract fails exactly that check, which names what broke.
func TestPluginConformanceCatchesABrokenTail(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rs := conformance.Run(context.Background(), conformance.Target{
		Kind: plugins.PluginScheduler, Name: "broken", Path: exe, Args: []string{brokenSchedulerArg}}, nil)
	const tail = "Tail is optional: Unimplemented, or an answer of a kind before its deadline when the host does not answer"
	seen := false
	for _, r := range rs {
		switch {
		case r.Name == tail:
			seen = true
			if r.Err == nil || !strings.Contains(r.Err.Error(), `stream "stdout"`) {
				t.Errorf("%s: %v; want it to name the stream", r.Name, r.Err)
			}
		case r.Err != nil:
			t.Errorf("%s: %v; the broken scheduler keeps this part of the contract", r.Name, r.Err)
		}
	}
	if !seen {
		t.Errorf("check %q did not run", tail)
	}
}

// TestPluginConformanceCatchesABrokenPlugin runs the suite against a runner
// that breaks the contract: exactly the broken checks fail, each naming what broke.
func TestPluginConformanceCatchesABrokenPlugin(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rs := conformance.Run(context.Background(), conformance.Target{
		Kind: plugins.PluginRunner, Name: "broken", Path: exe, Args: []string{brokenRunnerArg}}, nil)
	want := map[string]string{
		"Configure refuses a rule without a program (permanent error)":                        "Configure accepted it",
		"Plan answers a plan or a known refusal":                                              "does not name the input file",
		"Plan refuses a caption with an unbalanced quote":                                     "returned an error, not a plan or a refusal",
		"Plan is pure: the same request, sequentially and concurrently, gets the same answer": "does not name the input file",
	}
	if !conformance.Failed(rs) {
		t.Fatal("the suite passed a broken plugin")
	}
	for _, r := range rs {
		msg, broken := want[r.Name]
		switch {
		case broken && r.Err == nil:
			t.Errorf("%s: passed", r.Name)
		case broken && !strings.Contains(r.Err.Error(), msg):
			t.Errorf("%s: %v; want it to say %q", r.Name, r.Err, msg)
		case !broken && r.Err != nil:
			t.Errorf("%s: %v; the broken runner keeps this part of the contract", r.Name, r.Err)
		}
		delete(want, r.Name)
	}
	for name := range want {
		t.Errorf("check %q did not run", name)
	}
}

// TestExampleGoRunner builds examples/go-runner, a drop-in runner that is a
// module of its own, and runs the conformance suite against it as
// `hpcbot plugin test` does.
func TestExampleGoRunner(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "hpcbot-runner-lines")
	build := exec.Command("go", "build", "-o", exe, ".")
	build.Dir = filepath.Join("examples", "go-runner")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/go-runner: %v\n%s", err, out)
	}
	code, out, errOut := runMain(t, "plugin", "test", exe)
	if code != 0 || strings.Contains(out, "FAIL") || !strings.Contains(out, "all ") {
		t.Fatalf("plugin test %s: exit %d\n%s\n%s", exe, code, out, errOut)
	}
}

// needTool skips a test whose tool is missing, except in CI (CI=true), where
// .ci/run installs it and a missing tool is a failure.
func needTool(t *testing.T, name string, check *exec.Cmd) {
	t.Helper()
	if out, err := check.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (.ci/run installs it): %v\n%s", name, err, out)
		}
		t.Skipf("%s is missing (Debian: apt-get install %s): %v", name, name, err)
	}
}

// TestExamplePythonRunner runs the conformance suite against
// examples/python-runner, a drop-in runner in Python on Debian's python3-grpcio.
func TestExamplePythonRunner(t *testing.T) {
	needTool(t, "python3-grpcio", exec.Command("/usr/bin/python3", "-c", "import grpc"))
	exe, err := filepath.Abs(filepath.Join("examples", "python-runner", "hpcbot-runner-pywc"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain(t, "plugin", "test", exe)
	if code != 0 || strings.Contains(out, "FAIL") || !strings.Contains(out, "all ") {
		t.Fatalf("plugin test %s: exit %d\n%s\n%s", exe, code, out, errOut)
	}
}

// TestExamplePythonGenerated regenerates the Python runner's protocol code
// with its gen.sh and checks that the committed files are what it makes from
// today's hpcbot.proto.
func TestExamplePythonGenerated(t *testing.T) {
	needTool(t, "protobuf-compiler-grpc", exec.Command("test", "-x", "/usr/bin/grpc_python_plugin"))
	needTool(t, "protobuf-compiler", exec.Command("protoc", "--version"))
	src := filepath.Join("examples", "python-runner")
	// A copy of gen.sh in a tree of the same shape: it writes beside itself
	// and reads ../../plugins/proto.
	dir := t.TempDir()
	work := filepath.Join(dir, "examples", "python-runner")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Join("plugins", "proto"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "plugins", "proto")); err != nil {
		t.Fatal(err)
	}
	gen, err := os.ReadFile(filepath.Join(src, "gen.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "gen.sh"), gen, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(work, "gen.sh")).CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, out)
	}
	for _, f := range []string{"hpcbot_pb2.py", "hpcbot_pb2_grpc.py"} {
		want, err := os.ReadFile(filepath.Join(work, f))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(src, f))
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what examples/python-runner/gen.sh makes from plugins/proto/hpcbot.proto: run gen.sh and commit", f)
		}
	}
}
