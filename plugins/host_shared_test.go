package plugins

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// mirrorRunner answers from its own configuration: Info names the cluster it
// was configured for and lists its rules' programs; Plan runs the first
// program. Two clusters served by one process tell by it whose instance
// answered.
type mirrorRunner struct {
	mu      sync.Mutex
	cluster string
	rules   []RunnerRule
}

func (m *mirrorRunner) Configure(_ context.Context, cluster string, rules []RunnerRule) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cluster, m.rules = cluster, rules
	return nil
}

func (m *mirrorRunner) Info(context.Context) (RunnerInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	info := RunnerInfo{Name: "mirror of " + m.cluster}
	for _, r := range m.rules {
		info.Programs = append(info.Programs, ProgramInfo{Program: r.Program})
	}
	return info, nil
}

func (m *mirrorRunner) Plan(context.Context, PlanRequest) (Plan, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rules) == 0 {
		return Plan{}, &Refusal{Code: RefuseNoProgram}
	}
	return Plan{Program: m.cluster + ":" + m.rules[0].Program}, nil
}

// mirrorSays is what r's instance is configured with, as Info and Plan tell.
func mirrorSays(t *testing.T, r Runner) string {
	t.Helper()
	ctx := context.Background()
	info, err := r.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	plan, err := r.Plan(ctx, PlanRequest{FileName: "x.inp"})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	var progs []string
	for _, p := range info.Programs {
		progs = append(progs, p.Program)
	}
	return info.Name + " [" + strings.Join(progs, " ") + "] plans " + plan.Program
}

// TestBuiltinRunnerServesClustersFromOneProcess: two clusters that use the same
// built-in runner share one process, in which each has its own instance with
// its own rules; a reconfiguration of one leaves the other alone; a killed
// process is restarted and both clusters are configured again, with their
// latest rules.
func TestBuiltinRunnerServesClustersFromOneProcess(t *testing.T) {
	h, _, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	ra, err := h.Runner(ctx, "a", "mirror", []RunnerRule{{Runner: "mirror", Program: "orca"}})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := h.Runner(ctx, "b", "mirror", []RunnerRule{{Runner: "mirror", Program: "xtb"}, {Runner: "mirror", Program: "crest"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Runner(ctx, "a", "fake", nil); err != nil {
		t.Fatal(err)
	}
	st := h.Plugins()
	if len(st) != 2 || !slices.Equal(st[0].Clusters, []string{"a", "b"}) || st[0].Cluster != "a" || !slices.Equal(st[1].Clusters, []string{"a"}) {
		t.Fatalf("want one mirror process for a and b and one fake process for a: %+v", st)
	}
	if _, err := h.Runner(ctx, "b", "mirror", nil); err == nil || KindOf(err) != KindPermanent {
		t.Errorf("second mirror runner for cluster b: %v, want a permanent error", err)
	}
	check := func(when, a, b string) {
		t.Helper()
		if got := mirrorSays(t, ra); got != a {
			t.Errorf("%s: cluster a's runner says %q, want %q", when, got, a)
		}
		if got := mirrorSays(t, rb); got != b {
			t.Errorf("%s: cluster b's runner says %q, want %q", when, got, b)
		}
	}
	check("at start", "mirror of a [orca] plans a:orca", "mirror of b [xtb crest] plans b:xtb")
	if err := rb.Configure(ctx, "b", []RunnerRule{{Runner: "mirror", Program: "gaussian"}}); err != nil {
		t.Fatal(err)
	}
	check("after b's reconfiguration", "mirror of a [orca] plans a:orca", "mirror of b [gaussian] plans b:gaussian")
	if err := rb.Configure(ctx, "a", nil); err == nil {
		t.Error("cluster b's runner configured cluster a")
	}
	pid := st[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { s := h.Plugins()[0]; return s.Restarts == 1 && s.Running && s.PID != pid })
	check("after a restart", "mirror of a [orca] plans a:orca", "mirror of b [gaussian] plans b:gaussian")
	if got := h.Plugins()[1]; got.Restarts != 0 || got.PID != st[1].PID {
		t.Errorf("the other runner's process was restarted too: %+v", got)
	}
}

// TestDropInRunnerGetsAProcessPerCluster: a drop-in runner may not know the
// cluster metadata, so each cluster that uses it keeps a process of its own.
func TestDropInRunnerGetsAProcessPerCluster(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(exe, "'") {
		t.Fatal("test binary path contains a quote")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "hpcbot-runner-mirror")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec '"+exe+"' plugin serve runner mirror\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h, _, _ := newTestHost(t, HostOptions{PluginDir: dir})
	ctx := context.Background()
	ra, err := h.Runner(ctx, "a", "mirror", []RunnerRule{{Runner: "mirror", Program: "orca"}})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := h.Runner(ctx, "b", "mirror", []RunnerRule{{Runner: "mirror", Program: "xtb"}})
	if err != nil {
		t.Fatal(err)
	}
	st := h.Plugins()
	if len(st) != 2 || st[0].Builtin || st[0].PID == st[1].PID || !slices.Equal(st[0].Clusters, []string{"a"}) || !slices.Equal(st[1].Clusters, []string{"b"}) {
		t.Fatalf("want a drop-in process per cluster: %+v", st)
	}
	if got := mirrorSays(t, ra); got != "mirror of a [orca] plans a:orca" {
		t.Errorf("cluster a: %q", got)
	}
	if got := mirrorSays(t, rb); got != "mirror of b [xtb] plans b:xtb" {
		t.Errorf("cluster b: %q", got)
	}
}
