package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hpcbot/plugins"
	"hpcbot/store"
)

// TestTail: the Log button's text while a job runs (its output, from the
// cluster), after it failed (its error stream, from the fetched copy once the
// results are back), and the typed errors: not on a cluster yet, cluster
// unreachable, plugin without Tail, unknown calculation.
func TestTail(t *testing.T) {
	b := newBed(t)
	s := b.start()
	ctx := context.Background()

	body := "i=0; while [ $i -lt 500 ]; do echo \"step $i\"; i=$((i+1)); done\n" +
		waitScript("printf 'fatal: \\033[31mSCF\\033[0m \\377 failed\\n' >&2; exit 3")
	c := b.submit("job.sh", body, "")
	b.waitState(c.ID, store.StateRunning)
	var text string
	until(t, func() string { return fmt.Sprintf("the running job's output: %q", text) }, func() bool {
		text, _ = s.Tail(ctx, c.ID, 0)
		return strings.HasSuffix(text, "step 499")
	})
	if lines := strings.Split(text, "\n"); len(lines) != DefaultTailLines || lines[0] != "step 470" {
		t.Errorf("Tail(0) of the running job: %d lines from %q, want the last %d", len(lines), lines[0], DefaultTailLines)
	}
	if text, err := s.Tail(ctx, c.ID, 5000); err != nil || strings.Count(text, "\n")+1 != plugins.MaxTailLines {
		t.Errorf("Tail(5000): %d lines, %v; want the cap %d", strings.Count(text, "\n")+1, err, plugins.MaxTailLines)
	}

	// The cluster does not answer: a typed error, and a later call works again.
	b.faults["loc"].set("tail", errDown)
	if _, err := s.Tail(ctx, c.ID, 30); !errors.Is(err, ErrClusterUnreachable) {
		t.Errorf("Tail with the cluster down: %v, want ErrClusterUnreachable", err)
	}
	b.faults["loc"].set("tail", &plugins.Error{Kind: plugins.KindPermanent, Msg: "tail", Err: plugins.ErrNotSupported})
	if _, err := s.Tail(ctx, c.ID, 30); !errors.Is(err, ErrTailNotSupported) {
		t.Errorf("Tail of a plugin without it: %v, want ErrTailNotSupported", err)
	}
	b.faults["loc"].set("tail", nil)

	b.release(c)
	d := b.waitState(c.ID, store.StateNotified, store.StateError)
	if d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}
	// Failed, results fetched: the error stream, read from the fetched copy
	// (the cluster is not asked: it is "down" now).
	b.faults["loc"].set("tail", errDown)
	calls := b.faults["loc"].count("tail")
	text, err := s.Tail(ctx, c.ID, 30)
	if err != nil || text != "fatal: SCF \uFFFD failed" {
		t.Errorf("Tail of the failed job: %q, %v", text, err)
	}
	if n := b.faults["loc"].count("tail"); n != calls {
		t.Errorf("the fetched copy was there, yet the cluster was asked %d times", n-calls)
	}
	// The fetched copy gone and the cluster down: unreachable, not a crash.
	if err := os.Remove(filepath.Join(d.LocalDir, jobName(d.ID)+".err")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d.LocalDir, jobName(d.ID)+".out")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tail(ctx, c.ID, 30); !errors.Is(err, ErrClusterUnreachable) {
		t.Errorf("Tail with nothing fetched and the cluster down: %v", err)
	}
	b.faults["loc"].set("tail", nil)

	// Not on a cluster yet: a calculation without a job (the scheduler is
	// stopped, so nothing submits it meanwhile).
	b.stop()
	waiting := b.create(s, "wait.sh", "true\n", "", false)
	if _, err := s.Tail(ctx, waiting.ID, 30); !errors.Is(err, ErrNotOnCluster) {
		t.Errorf("Tail before submission: %v, want ErrNotOnCluster", err)
	}
	if _, err := s.Tail(ctx, 999999, 30); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Tail of an unknown calculation: %v, want store.ErrNotFound", err)
	}
}

// TestTailNoOutputYet: a submitted job whose output file does not exist yet
// (the cluster has not started it) is ErrNoOutput, not a crash.
func TestTailNoOutputYet(t *testing.T) {
	b := newBed(t)
	s := b.start()
	c := b.submit("job.sh", waitScript("echo done"), "")
	d := b.waitState(c.ID, store.StateRunning)
	for _, name := range []string{jobName(d.ID) + ".out", jobName(d.ID) + ".err"} {
		if err := os.Remove(filepath.Join(b.remote(d), name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Tail(context.Background(), c.ID, 30); !errors.Is(err, ErrNoOutput) {
		t.Errorf("Tail without output files: %v, want ErrNoOutput", err)
	}
	b.release(c)
	b.waitState(c.ID, store.StateNotified, store.StateError)
}
