package scheduler

import (
	"errors"
	"fmt"
	"testing"

	"hpcbot/internal/testbed"
	"hpcbot/store"
)

// waitDrainedNotice waits until the user of calc id was told it waits on a
// drained cluster, and returns that notification.
func (b *bed) waitDrainedNotice(id uint64) Notification {
	b.t.Helper()
	var got []Notification
	until(b.t, func() string { return fmt.Sprintf("calc %d: drained notice (have %+v)", id, got) }, func() bool {
		got = b.notes.of(id, EventWaiting)
		return len(got) > 0
	})
	if len(got) != 1 || got[0].Code != CodeClusterDrained {
		b.t.Fatalf("calc %d: waiting notices %+v, want one with code %s", id, got, CodeClusterDrained)
	}
	return got[0]
}

// A drained cluster submits nothing: a file for it waits in the store and its
// user is told why (with the admin's words); the drain survives a restart; after
// /undrain everything that waited is staged, submitted and delivered.
func TestDrainHoldsUntilUndrain(t *testing.T) {
	b := newBed(t)
	s := b.start()
	if err := s.Drain("loc", "new disks", "admin 1"); err != nil {
		t.Fatal(err)
	}
	c1 := b.submit("a.sh", "echo a > a.out\n", "")
	n := b.waitDrainedNotice(c1.ID)
	if n.Reason != "new disks" {
		t.Fatalf("reason %q", n.Reason)
	}
	if got, _ := b.st.Calc(c1.ID); got.State != store.StateReceived {
		t.Fatalf("state %s", got.State)
	}
	if st, su := b.faults["loc"].count("Stage"), b.faults["loc"].count("Submit"); st != 0 || su != 0 {
		t.Fatalf("drained cluster: %d stages, %d submits", st, su)
	}

	b.stop()
	s = b.start()
	if d, err := s.DrainState("loc"); err != nil || !d.Drained || d.Reason != "new disks" || d.By != "admin 1" {
		t.Fatalf("after restart: %+v, %v", d, err)
	}
	if ci := s.Clusters(); len(ci) != 1 || !ci[0].Drain.Drained {
		t.Fatalf("Clusters: %+v", ci)
	}
	c2 := b.submit("b.sh", "echo b > b.out\n", "")
	if c2.Cluster != "loc" {
		t.Fatalf("routed to %s", c2.Cluster)
	}
	b.waitDrainedNotice(c2.ID)
	if len(b.notes.of(c1.ID, EventWaiting)) != 1 {
		t.Fatal("told twice about the same drain")
	}
	if su := b.faults["loc"].count("Submit"); su != 0 {
		t.Fatalf("drained cluster after restart: %d submits", su)
	}

	if err := s.Undrain("loc"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Calculation{c1, c2} {
		d := b.waitState(c.ID, store.StateNotified, store.StateError)
		if d.State != store.StateNotified {
			t.Fatalf("calc %d: %s: %s", c.ID, history(d), d.Error)
		}
		if !d.Progress.Drained.IsZero() {
			t.Fatalf("calc %d still marked drained", c.ID)
		}
		if len(b.notes.of(c.ID, EventResumed)) != 1 {
			t.Fatalf("calc %d: no resumed notice", c.ID)
		}
	}
	if err := s.Drain("nosuch", "", ""); !errors.Is(err, ErrUnknownCluster) {
		t.Fatalf("drain of an unknown cluster: %v", err)
	}
}

// A drained cluster's files go to the next cluster with a matching runner: new
// ones at routing, and ones received before the drain at intake.
func TestDrainFailsOver(t *testing.T) {
	b := newBed(t, withClusters("first", "second"))
	s0, err := New(b.cfg, b.st, b.scheds, b.runners, b.notes, testLogger(t), b.opts...)
	if err != nil {
		t.Fatal(err)
	}
	early := b.create(s0, "early.sh", "echo e > e.out\n", "", false)
	if early.Cluster != "first" {
		t.Fatalf("routed to %s", early.Cluster)
	}
	if err := s0.Drain("first", "", "admin"); err != nil {
		t.Fatal(err)
	}
	s := b.start()
	late := b.submit("late.sh", "echo l > l.out\n", "")
	if late.Cluster != "second" {
		t.Fatalf("new file routed to drained %s", late.Cluster)
	}
	for _, c := range []store.Calculation{early, late} {
		d := b.waitState(c.ID, store.StateNotified, store.StateError)
		if d.State != store.StateNotified || d.Cluster != "second" {
			t.Fatalf("calc %d on %s: %s: %s", c.ID, d.Cluster, history(d), d.Error)
		}
	}
	if d, _ := b.st.Calc(early.ID); d.Progress.FailoverFrom != "first" {
		t.Fatalf("failover_from %q", d.Progress.FailoverFrom)
	}
	if su := b.faults["first"].count("Submit"); su != 0 {
		t.Fatalf("drained cluster: %d submits", su)
	}
	if ci := s.Clusters(); !ci[0].Drain.Drained || ci[1].Drain.Drained {
		t.Fatalf("Clusters: %+v", ci)
	}
}

// Where failover is off, a file for a drained cluster waits for it even when
// another cluster could run it.
func TestDrainWaitsWithoutFailover(t *testing.T) {
	b := newBed(t, withClusters("first", "second"))
	off := false
	b.cfg.Clusters[0].Failover = &off
	s := b.start()
	if err := s.Drain("first", "", "admin"); err != nil {
		t.Fatal(err)
	}
	r, err := s.Route(t.Context(), "x.sh", "")
	if err != nil || r.Cluster != "first" || !r.Drained {
		t.Fatalf("route %+v, %v", r, err)
	}
	c := b.submit("x.sh", "echo x > x.out\n", "")
	b.waitDrainedNotice(c.ID)
	if got, _ := b.st.Calc(c.ID); got.Cluster != "first" || got.State != store.StateReceived {
		t.Fatalf("calc on %s in %s", got.Cluster, got.State)
	}
	if n := b.faults["second"].count("Stage") + b.faults["first"].count("Stage"); n != 0 {
		t.Fatalf("%d stages", n)
	}
}

// drained = true in the configuration starts the cluster drained; an admin's
// /undrain outlasts a restart with the same configuration, and a change of the
// key wins over the admin's last word.
func TestDrainedByConfiguration(t *testing.T) {
	b := newBed(t)
	b.cfg.Clusters[0].Drained = true
	s := b.start()
	if d, _ := s.DrainState("loc"); !d.Drained || d.By != "configuration" {
		t.Fatalf("configured drained: %+v", d)
	}
	if err := s.Undrain("loc"); err != nil {
		t.Fatal(err)
	}
	b.stop()
	s = b.start()
	if d, _ := s.DrainState("loc"); d.Drained {
		t.Fatalf("undrain forgotten at restart: %+v", d)
	}
	b.stop()
	b.cfg.Clusters[0].Drained = false
	s = b.start()
	if err := s.Drain("loc", "x", "admin"); err != nil {
		t.Fatal(err)
	}
	b.stop()
	b.cfg.Clusters[0].Drained = true
	s = b.start()
	if d, _ := s.DrainState("loc"); !d.Drained || d.By != "configuration" {
		t.Fatalf("changed configuration did not win: %+v", d)
	}
}

// Maintenance end to end on the test bed's Slurm: nothing reaches sbatch while
// the cluster is drained, a restart while drained loses nothing and submits
// nothing, and after /undrain both calculations run and are delivered.
func TestSlurmDrainEndToEnd(t *testing.T) {
	b, _ := newSlurmBed(t, testbed.Slurm(t), nil)
	s := b.start()
	if err := s.Drain("bed", "filesystem check", "admin"); err != nil {
		t.Fatal(err)
	}
	c1 := b.submit("one.sh", "echo one > one.log\n", "")
	b.waitDrainedNotice(c1.ID)
	b.stop()
	s = b.start()
	c2 := b.submit("two.sh", "echo two > two.log\n", "")
	b.waitDrainedNotice(c2.ID)
	if n := b.faults["bed"].count("Submit") + b.faults["bed"].count("Stage"); n != 0 {
		t.Fatalf("drained cluster: %d stage and submit calls", n)
	}
	for _, c := range []store.Calculation{c1, c2} {
		if got, _ := b.st.Calc(c.ID); got.State != store.StateReceived || got.JobID != "" {
			t.Fatalf("calc %d: %s, job %q", c.ID, got.State, got.JobID)
		}
	}
	if err := s.Undrain("bed"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Calculation{c1, c2} {
		d := b.waitState(c.ID, store.StateNotified, store.StateError)
		if d.State != store.StateNotified || d.JobID == "" {
			t.Fatalf("calc %d: %s: %s", c.ID, history(d), d.Error)
		}
		if b.faults["bed"].launched(c.ID) != 1 {
			t.Fatalf("calc %d: %d launches", c.ID, b.faults["bed"].launched(c.ID))
		}
	}
}

// A drain stops new submissions only: a job already on the cluster is polled,
// fetched and delivered as usual.
func TestDrainKeepsFollowingJobs(t *testing.T) {
	b := newBed(t)
	s := b.start()
	c := b.submit("run.sh", waitScript("echo done > done.out"), "")
	b.waitState(c.ID, store.StateRunning)
	if err := s.Drain("loc", "", "admin"); err != nil {
		t.Fatal(err)
	}
	b.release(c)
	if d := b.waitState(c.ID, store.StateNotified, store.StateError); d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}
	if len(b.notes.of(c.ID, EventFinished)) != 1 || len(b.notes.of(c.ID, EventWaiting)) != 0 {
		t.Fatal("the running job was not delivered as usual")
	}
}
