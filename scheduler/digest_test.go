package scheduler

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/runners/qcrun"
	"hpcbot/store"
)

// xtbAsSh is an "xtb" runner whose program is sh, so that a job can print a
// real xtb output (a fixture) without xtb installed.
var xtbAsSh = []plugins.RunnerRule{{Runner: qcrun.XTB, Program: "sh", AllowedArgs: []string{"{}"}, Associations: []string{".sh"}}}

// printFixture is a job script that prints a real xtb run's stdout and stderr
// and exits with code.
func printFixture(t *testing.T, name string, code int) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "runners", "qc", "testdata", "xtb6.5.1"))
	if err != nil {
		t.Fatal(err)
	}
	return "cat '" + filepath.Join(dir, name+".out") + "'; cat '" + filepath.Join(dir, name+".err") + "' >&2; exit " + string(rune('0'+code)) + "\n"
}

func fixtureEnergy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "runners", "qc", "testdata", "xtb6.5.1", name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`TOTAL ENERGY\s+(\S+) Eh`).FindAllStringSubmatch(string(b), -1)
	if len(m) == 0 {
		t.Fatal("no energy in the fixture")
	}
	return m[len(m)-1][1]
}

func finished(b *bed, id uint64) Notification {
	b.t.Helper()
	c := b.waitState(id, store.StateNotified)
	ns := b.notes.of(c.ID, EventFinished)
	if len(ns) != 1 {
		b.t.Fatalf("finish notices: %d", len(ns))
	}
	return ns[0]
}

// The digest is taken after fetch, stored with the calculation and handed to
// the finish notice.
func TestDigestStoredAndNotified(t *testing.T) {
	b := newBed(t, func(b *bed) { b.addLocalRunner("loc", 4, xtbAsSh, qcrun.New(qcrun.XTB)) })
	b.start()
	c := b.submit("water.sh", printFixture(t, "water_opt", 0), "")
	n := finished(b, c.ID)
	got, err := b.st.Calc(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	d := got.Digest
	if d == nil || d.Termination != store.DigestNormal || d.Energy != fixtureEnergy(t, "water_opt") || !d.OptConverged {
		t.Fatalf("stored digest %+v; want normal, energy %s, converged", d, fixtureEnergy(t, "water_opt"))
	}
	if n.Outcome != store.StateSucceeded || n.Calc.Digest == nil || *n.Calc.Digest != *d {
		t.Errorf("notice outcome %s, digest %+v", n.Outcome, n.Calc.Digest)
	}
}

// Exit code 0, but xtb's output says it failed: reported as failed, with the
// program's line in the digest.
func TestDigestFailedOverridesExitCodeZero(t *testing.T) {
	b := newBed(t, func(b *bed) { b.addLocalRunner("loc", 4, xtbAsSh, qcrun.New(qcrun.XTB)) })
	b.start()
	c := b.submit("bad.sh", printFixture(t, "bad_count", 0), "")
	n := finished(b, c.ID)
	if n.Calc.ExitCode == nil || *n.Calc.ExitCode != 0 {
		t.Fatalf("exit code %v, want 0", n.Calc.ExitCode)
	}
	if n.Outcome != store.StateFailed {
		t.Errorf("outcome %s, want failed", n.Outcome)
	}
	if d := n.Calc.Digest; d == nil || d.Termination != store.DigestFailed || !strings.Contains(d.TerminationLine, "Atom number missmatch") {
		t.Errorf("digest %+v; want failed with xtb's error line", d)
	}
}

// An output the runner does not recognise is stored as "no summary", and the
// exit code decides the outcome.
func TestDigestNoSummary(t *testing.T) {
	b := newBed(t, func(b *bed) { b.addLocalRunner("loc", 4, xtbAsSh, qcrun.New(qcrun.XTB)) })
	b.start()
	c := b.submit("hello.sh", "echo hello\n", "")
	n := finished(b, c.ID)
	if n.Outcome != store.StateSucceeded || n.Calc.Digest == nil || n.Calc.Digest.Termination != store.DigestNone {
		t.Errorf("outcome %s, digest %+v; want succeeded with no summary", n.Outcome, n.Calc.Digest)
	}
}

// badDigester is an xtb runner whose Digest blocks past its deadline, panics
// or fails.
type badDigester struct {
	*qcrun.Runner
	mode string
}

func (b badDigester) Digest(ctx context.Context, _ plugins.DigestRequest) (plugins.Digest, error) {
	switch b.mode {
	case "block":
		<-ctx.Done()
		return plugins.Digest{}, ctx.Err()
	case "panic":
		panic("digest exploded")
	}
	return plugins.Digest{}, &plugins.Error{Kind: plugins.KindTransient, Msg: "plugin process exited"}
}

// A Digest that times out, panics or fails never loses the delivery: the
// results arrive, without a summary.
func TestDigestFailureNeverLosesTheDelivery(t *testing.T) {
	for _, mode := range []string{"block", "panic", "error"} {
		t.Run(mode, func(t *testing.T) {
			b := newBed(t, func(b *bed) {
				b.addLocalRunner("loc", 4, xtbAsSh, badDigester{Runner: qcrun.New(qcrun.XTB), mode: mode})
			})
			b.start(WithDigestTimeout(100 * time.Millisecond))
			c := b.submit("water.sh", printFixture(t, "water_opt", 0), "")
			n := finished(b, c.ID)
			if n.Outcome != store.StateSucceeded || n.Calc.Digest != nil || len(n.Files) == 0 {
				t.Errorf("outcome %s, digest %+v, files %v; want succeeded, no summary, the files", n.Outcome, n.Calc.Digest, n.Files)
			}
		})
	}
}
