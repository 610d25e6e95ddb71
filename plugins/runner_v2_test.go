package plugins

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Protocol 2: Check and Digest cross the process boundary exactly, and a
// runner of protocol 1 keeps working without them.

func TestRunnerCheckAndDigestRoundTrip(t *testing.T) {
	h, dir, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	r, err := h.Runner(ctx, "c1", "fake", []RunnerRule{{Runner: "fake", Program: "orca"}})
	if err != nil {
		t.Fatal(err)
	}

	res := InputResources{Tasks: 16, CPUsPerTask: 2, MemoryMB: 48000}
	result(t, dir, "Check", res)
	creq := CheckInputRequest{FileName: "h2o.inp", Caption: "orca {}", Path: "/var/lib/hpcbot/in/h2o.inp", Program: "orca"}
	got, err := r.Check(ctx, creq)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "Check", got, res)
	var gotCReq CheckInputRequest
	lastCall(t, dir, "Check", &gotCReq)
	same(t, "Check request", gotCReq, creq)

	want := Refusal{Code: "input_too_many_cores", Detail: "%pal nprocs 64 end", Line: 3, Limit: "16"}
	reply(t, dir, "Check", fakeReply{Refusal: &want})
	_, err = r.Check(ctx, creq)
	var ref *Refusal
	if !errors.As(err, &ref) {
		t.Fatalf("Check refused: got %T %v, want *Refusal", err, err)
	}
	same(t, "Check refusal", *ref, want)

	code := 0
	dreq := DigestRequest{Dir: "/var/lib/hpcbot/out/7", Files: []string{"h2o.out", "h2o.xyz", "sub/x.log"},
		InputFile: "h2o.inp", Program: "orca", Stdout: "hpcbot-7.out", Stderr: "hpcbot-7.err", ExitCode: &code}
	dg := Digest{Program: "orca", Version: "6.0.0", Termination: TerminationFailed,
		TerminationLine: "ORCA finished by error termination in SCF", Energy: "-76.026765747", EnergyMethod: "SCF",
		Optimization: true, OptConverged: false, OptCycles: 7, Frequencies: 3, Imaginary: 1, LowestFrequency: "-123.45",
		WallSeconds: 3723, GeometryFile: "h2o.xyz"}
	result(t, dir, "Digest", dg)
	gotD, err := r.Digest(ctx, dreq)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "Digest", gotD, dg)
	var gotDReq DigestRequest
	lastCall(t, dir, "Digest", &gotDReq)
	same(t, "Digest request", gotDReq, dreq)

	// A termination the protocol does not define is no summary, never a guess.
	result(t, dir, "Digest", Digest{Termination: "probably fine", Energy: "-1.0"})
	gotD, err = r.Digest(ctx, dreq)
	if err != nil || gotD.HasSummary() {
		t.Errorf("unknown termination: got %+v, %v; want no summary", gotD, err)
	}
	// No summary crosses as such, and nothing else with it.
	result(t, dir, "Digest", Digest{Program: "orca", Termination: TerminationNone, Energy: "-1.0"})
	gotD, err = r.Digest(ctx, dreq)
	if err != nil || gotD != (Digest{Program: "orca", Termination: TerminationNone}) {
		t.Errorf("no summary: got %+v, %v", gotD, err)
	}
	// A runner error reaches the host with its kind.
	perm := KindPermanent
	reply(t, dir, "Digest", fakeReply{Kind: &perm, Msg: "cannot read"})
	if _, err = r.Digest(ctx, dreq); KindOf(err) != KindPermanent || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("Digest error: %v (kind %v)", err, KindOf(err))
	}
}

func TestDigestRefusesNamesOutsideTheFolder(t *testing.T) {
	h, dir, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	r, err := h.Runner(ctx, "c1", "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []DigestRequest{
		{Dir: "/r", Files: []string{"../etc/passwd"}},
		{Dir: "/r", Files: []string{"/etc/passwd"}},
		{Dir: "/r", Stdout: "../x.out"},
		{Dir: "relative", Files: []string{"a.out"}},
	} {
		if _, err := r.Digest(ctx, req); KindOf(err) != KindPermanent {
			t.Errorf("Digest(%+v): %v (kind %v), want a permanent error", req, err, KindOf(err))
		}
	}
	for _, c := range calls(t, dir) {
		if c.Method == "Digest" {
			t.Errorf("the plugin was asked to read a name outside the folder: %s", c.Req)
		}
	}
}

// A runner plugin of protocol 1 (it announces only 1) is accepted; the host
// never asks it Check or Digest: the input runs unchecked, with no summary.
func TestRunnerOfProtocol1HasNoCheckNorDigest(t *testing.T) {
	h, dir, _ := newTestHost(t, HostOptions{env: []string{envProtocol + "=1"}})
	ctx := context.Background()
	r, err := h.Runner(ctx, "c1", "fake", nil)
	if err != nil {
		t.Fatalf("a protocol-1 runner was refused: %v", err)
	}
	result(t, dir, "Plan", Plan{Program: "xtb", Argv: []string{"xtb", "./w.xyz"}})
	if p, err := r.Plan(ctx, PlanRequest{FileName: "w.xyz"}); err != nil || p.Program != "xtb" {
		t.Fatalf("Plan over protocol 1: %+v, %v", p, err)
	}
	res, err := r.Check(ctx, CheckInputRequest{FileName: "w.xyz", Path: "/x/w.xyz"})
	if err != nil || res != (InputResources{}) {
		t.Errorf("Check of a protocol-1 runner: %+v, %v; want accepted with no resources", res, err)
	}
	d, err := r.Digest(ctx, DigestRequest{Dir: "/r", Files: []string{"w.out"}})
	if err != nil || d.HasSummary() {
		t.Errorf("Digest of a protocol-1 runner: %+v, %v; want no summary", d, err)
	}
	for _, c := range calls(t, dir) {
		if c.Method == "Check" || c.Method == "Digest" {
			t.Errorf("a protocol-1 runner was called %s", c.Method)
		}
	}
}

// A Go runner without Checker and Digester, served under protocol 2, accepts
// every input and has no summary.
func TestRunnerWithoutCheckerOrDigester(t *testing.T) {
	h, _, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	r, err := h.Runner(ctx, "c1", "plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Check(ctx, CheckInputRequest{FileName: "w.xyz", Path: "/x/w.xyz"})
	if err != nil || res != (InputResources{}) {
		t.Errorf("Check: %+v, %v; want accepted with no resources", res, err)
	}
	d, err := r.Digest(ctx, DigestRequest{Dir: "/r", Files: []string{"w.out"}})
	if err != nil || d.HasSummary() {
		t.Errorf("Digest: %+v, %v; want no summary", d, err)
	}
}

// A runner that announces protocol 2 but serves only protocol 1's calls lies
// about its version: Check and Digest are refused, naming both versions.
func TestRunnerThatLiesAboutItsVersion(t *testing.T) {
	h, _, _ := newTestHost(t, HostOptions{env: []string{envLiar + "=1"}})
	ctx := context.Background()
	r, err := h.Runner(ctx, "c1", "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Check(ctx, CheckInputRequest{FileName: "w.xyz", Path: "/x/w.xyz"})
	if KindOf(err) != KindPermanent || !strings.Contains(err.Error(), "announced plugin protocol 2") ||
		!strings.Contains(err.Error(), "speaks protocol 1") {
		t.Errorf("Check of a liar: %v (kind %v); want a permanent error naming protocols 2 and 1", err, KindOf(err))
	}
	_, err = r.Digest(ctx, DigestRequest{Dir: "/r", Files: []string{"w.out"}})
	if KindOf(err) != KindPermanent || !strings.Contains(err.Error(), "does not implement Digest") {
		t.Errorf("Digest of a liar: %v (kind %v)", err, KindOf(err))
	}
}
