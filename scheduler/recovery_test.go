package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// crashPoint is where a previous run died, as the store and the cluster were left.
type crashPoint int

const (
	atReceived        crashPoint = iota // created, nothing done
	atStagedRemote                      // Stage done, not recorded
	atStaged                            // staged recorded
	atSubmittedRemote                   // Submit launched the job, not recorded
	atSubmitted                         // submitted recorded, accepted not told
	atRunning                           // running recorded
	atSucceeded                         // the job ended, not fetched
	atRetrieved                         // fetched, not delivered
	atDelivered                         // delivered, user not told
	atNotifiedOnly                      // user told, notified not recorded
	crashPoints
)

// drive brings calc to crash point p with the plugin and the scheduler's own
// steps, as a run that died there would have left it.
func drive(t *testing.T, b *bed, s *Scheduler, c store.Calculation, p crashPoint) {
	t.Helper()
	ctx := context.Background()
	sched := b.scheds[c.Cluster]
	tr := func(to store.State, set func(*store.Calculation)) {
		t.Helper()
		var err error
		c, err = b.st.Transition(c.ID, to, "test", func(_ *store.Tx, x *store.Calculation) error {
			if set != nil {
				set(x)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if p == atReceived {
		return
	}
	if err := sched.Stage(ctx, plugins.StageRequest{CalcID: c.ID, LocalDir: c.LocalDir, Folder: c.Folder}); err != nil {
		t.Fatal(err)
	}
	if p == atStagedRemote {
		return
	}
	tr(store.StateStaged, nil)
	if p == atStaged {
		return
	}
	res, err := sched.Submit(ctx, plugins.SubmitRequest{CalcID: c.ID, Folder: c.Folder, Argv: c.Argv, Launch: c.Launch,
		JobName: jobName(c.ID), Comment: s.comment(c)})
	if err != nil {
		t.Fatal(err)
	}
	if p == atSubmittedRemote {
		return
	}
	tr(store.StateSubmitted, func(x *store.Calculation) { x.JobID = res.JobID })
	if p == atSubmitted {
		return
	}
	tr(store.StateRunning, nil)
	if p == atRunning {
		return
	}
	ref := plugins.JobRef{CalcID: c.ID, JobID: c.JobID, Folder: c.Folder, Launch: c.Launch}
	var st []plugins.JobStatus
	until(t, func() string { return fmt.Sprintf("job of calc %d to end: %+v", c.ID, st) }, func() bool {
		st, err = sched.Poll(ctx, []plugins.JobRef{ref})
		return err == nil && st[0].State.Final()
	})
	tr(store.StateSucceeded, func(x *store.Calculation) { code := *st[0].ExitCode; x.ExitCode = &code })
	if p == atSucceeded {
		return
	}
	if !s.fetch(ctx, c) {
		t.Fatal("fetch failed")
	}
	c, _ = b.st.Calc(c.ID)
	if p == atRetrieved {
		return
	}
	if !s.deliver(ctx, c) {
		t.Fatal("deliver failed")
	}
	c, _ = b.st.Calc(c.ID)
	if p == atDelivered {
		return
	}
	if err := b.notes.Notify(ctx, s.finishedNotice(c)); err != nil {
		t.Fatal(err)
	}
}

// A new Scheduler drives calculations left at every step of a dead run to
// notified: no job launched twice, no message lost, none told twice but the one
// whose notice was queued just before the crash (the Notifier drops the repeat).
func TestRestartRecovery(t *testing.T) {
	for _, cloud := range []bool{false, true} {
		t.Run(fmt.Sprintf("cloud=%v", cloud), func(t *testing.T) {
			var opts []bedOpt
			if cloud {
				opts = append(opts, withCloud("per_calculation"))
			}
			b := newBed(t, opts...)
			// The dead run: a Scheduler that was never started, used for its steps.
			dead, err := New(b.cfg, b.st, b.scheds, b.runners, b.notes, testLogger(t), b.opts...)
			if err != nil {
				t.Fatal(err)
			}
			calcs := make([]store.Calculation, crashPoints)
			for p := range crashPoints {
				calcs[p] = b.create(dead, fmt.Sprintf("c%d.sh", p), fmt.Sprintf("echo %d > r.txt", p), "", false)
				drive(t, b, dead, calcs[p], p)
			}
			b.start()
			for p, c := range calcs {
				d := b.waitState(c.ID, store.StateNotified, store.StateError)
				if d.State != store.StateNotified {
					t.Fatalf("crash point %d: %s: %s", p, history(d), d.Error)
				}
				if n := b.faults["loc"].launched(c.ID); n != 1 {
					t.Errorf("crash point %d: %d launches", p, n)
				}
				if fin := b.notes.of(c.ID, EventFinished); len(fin) != 1 || fin[0].Outcome != store.StateSucceeded {
					t.Errorf("crash point %d: finished notices %+v", p, fin)
				}
				if cloud && d.ShareLink == "" {
					t.Errorf("crash point %d: no link", p)
				}
				if p >= int(atSubmitted) {
					continue // accepted was told by the dead run or never (it died before)
				}
				if acc := b.notes.of(c.ID, EventAccepted); len(acc) != 1 {
					t.Errorf("crash point %d: accepted notices %+v", p, acc)
				}
			}
			for _, k := range b.notes.repeated() {
				if k != fmt.Sprintf("calc/%d/finished×2", calcs[atNotifiedOnly].ID) {
					t.Errorf("Notify repeated: %s", k)
				}
			}
			if cloud {
				if shares := b.nc.Shares(); len(shares) != len(calcs) {
					t.Errorf("%d shares for %d calculations", len(shares), len(calcs))
				}
			}
		})
	}
}

// Stop the scheduler again and again at random moments, abandoning whatever step
// is in flight; every calculation still ends notified with one job.
func TestRepeatedRestarts(t *testing.T) {
	b := newBed(t, withCloud("per_calculation"))
	b.opts = append(b.opts, WithStopGrace(0))
	const n = 6
	var calcs []store.Calculation
	s := b.start()
	for i := range n {
		calcs = append(calcs, b.create(s, fmt.Sprintf("r%d.sh", i), fmt.Sprintf("sleep 0.%d; echo %d > r.txt", i, i), "", true))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for restart := 0; ; restart++ {
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		all := true
		for _, c := range calcs {
			if got, _ := b.st.Calc(c.ID); got.State != store.StateNotified {
				if got.State == store.StateError {
					t.Fatalf("calc %d: %s: %s", c.ID, history(got), got.Error)
				}
				all = false
			}
		}
		if all {
			t.Logf("all notified after %d restarts", restart)
			break
		}
		if restart > 400 {
			for _, c := range calcs {
				got, _ := b.st.Calc(c.ID)
				t.Logf("calc %d: %s, attempts %d, next %v, error %q", c.ID, history(got), got.Attempts, got.NextTry, got.Error)
			}
			t.Fatal("not done after 400 restarts")
		}
		b.stop()
		b.start()
	}
	for _, c := range calcs {
		if got := b.faults["loc"].launched(c.ID); got != 1 {
			t.Errorf("calc %d: %d launches", c.ID, got)
		}
		if fin := b.notes.of(c.ID, EventFinished); len(fin) != 1 {
			t.Errorf("calc %d: finished notices %+v", c.ID, fin)
		}
	}
	if shares := b.nc.Shares(); len(shares) != n {
		t.Errorf("%d shares for %d calculations", len(shares), n)
	}
}

// Cancelling a staged calculation whose job was launched by a run that died
// before recording it: the job is found and stopped, not left running untracked.
func TestCancelStagedAfterCrash(t *testing.T) {
	b := newBed(t)
	s, err := New(b.cfg, b.st, b.scheds, b.runners, b.notes, testLogger(t), b.opts...)
	if err != nil {
		t.Fatal(err)
	}
	c := b.create(s, "orphan.sh", waitScript("echo ran > ran.txt"), "", false)
	drive(t, b, s, c, atSubmittedRemote)
	if err := s.Cancel(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	b.start()
	d := b.waitState(c.ID, store.StateNotified)
	fin := b.notes.of(c.ID, EventFinished)
	if len(fin) != 1 || fin[0].Outcome != store.StateCancelled || d.JobID == "" {
		t.Fatalf("%s, notices %+v", history(d), fin)
	}
	if n := b.faults["loc"].launched(c.ID); n != 1 {
		t.Fatalf("%d launches", n)
	}
	b.waitJobGone(d)
	b.release(d)
	if _, err := os.Stat(filepath.Join(b.remote(d), "ran.txt")); err == nil {
		t.Fatal("the orphaned job kept running")
	}
}
