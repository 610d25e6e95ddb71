package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// wantActive derives the calcs_active index from the full records: every
// calculation in an active state, by cluster, ordered by id.
func wantActive(t *testing.T, s *Store) map[string][]ActiveJob {
	t.Helper()
	all, err := s.CalcsByState(States...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]ActiveJob{}
	for _, c := range all {
		if !c.State.Active() {
			continue
		}
		var since time.Time
		if !c.WaitingSince.IsZero() {
			since = time.Unix(0, c.WaitingSince.UnixNano())
		}
		want[c.Cluster] = append(want[c.Cluster], ActiveJob{ID: c.ID, State: c.State, JobID: c.JobID, Folder: c.Folder,
			Launch: c.Launch, RawState: c.RawState, WaitingSince: since, WaitNotified: c.WaitNotified, Cancel: c.Progress.Cancel, Accepted: c.Progress.Accepted,
			Reason: c.Progress.Reason, Node: c.Progress.Node})
	}
	return want
}

// checkActive compares ActiveJobs of every cluster with wantActive and counts
// the bucket's entries, so that a stale entry (an old state, an old cluster)
// is caught too.
func checkActive(t *testing.T, s *Store, clusters []string) {
	t.Helper()
	want := wantActive(t, s)
	total := 0
	for _, cl := range clusters {
		got, err := s.ActiveJobs(cl)
		if err != nil {
			t.Fatalf("ActiveJobs(%q): %v", cl, err)
		}
		if !reflect.DeepEqual(got, want[cl]) {
			t.Fatalf("ActiveJobs(%q) =\n%+v\nwant (from the records)\n%+v", cl, got, want[cl])
		}
		total += len(want[cl])
	}
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bCalcActive).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != total {
		t.Fatalf("calcs_active holds %d entries, the records say %d", n, total)
	}
}

// TestActiveIndexFollowsChanges drives calculations through random transitions
// and updates (job ids, raw states, waits, delivery entries, a cluster change
// at intake) and checks after each step that the index equals what the
// records say.
func TestActiveIndexFollowsChanges(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 1000)
	// "a" and "a\x00b"-like labels must not see each other's entries; "" too.
	clusters := []string{"loc", "lo", "loc2", "", "x"}
	rng := rand.New(rand.NewPCG(2, 3))
	var ids []uint64
	for i := range 40 {
		c, err := s.CreateCalculation(Calculation{UserID: u.ID, InputName: "in.inp", Folder: fmt.Sprintf("f%d", i),
			Cluster: clusters[i%len(clusters)], Launch: "batch"}, window, clk.t)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	checkActive(t, s, clusters)
	movedActive, active := 0, 0
	for step := range 1500 {
		id := ids[rng.IntN(len(ids))]
		c, err := s.Calc(id)
		if err != nil {
			t.Fatal(err)
		}
		mutate := func(_ *Tx, c *Calculation) error {
			switch rng.IntN(7) {
			case 0:
				c.JobID = fmt.Sprint(rng.IntN(1e6))
			case 1:
				c.RawState = []string{"PD", "R", "CG", ""}[rng.IntN(4)]
			case 2:
				if c.WaitingSince.IsZero() {
					c.WaitingSince = clk.t.Add(time.Duration(rng.IntN(1e6)) * time.Millisecond)
				} else {
					c.WaitingSince, c.WaitNotified = time.Time{}, false
				}
			case 3:
				c.WaitNotified = !c.WaitNotified
			case 4:
				c.Progress.Cancel = []Cancel{CancelNone, CancelRequested, CancelSent}[rng.IntN(3)]
				c.Progress.Accepted = rng.IntN(2) == 0
			case 5:
				// Failover moves a calculation before staging; the store
				// allows a move in any state, so the index must follow it.
				c.Cluster = clusters[rng.IntN(len(clusters))]
				if c.State.Active() {
					movedActive++
				}
			case 6:
				c.Progress.Reason = []string{"", "Priority", "Resources"}[rng.IntN(3)]
				c.Progress.Node = []string{"", "node01", "node[01-02]"}[rng.IntN(3)]
			}
			return nil
		}
		if c.State.Active() {
			active++
		}
		if tos := transitions[c.State]; len(tos) > 0 && rng.IntN(3) == 0 {
			to := tos[rng.IntN(len(tos))]
			if _, err := s.Transition(id, to, "step", mutate); err != nil {
				t.Fatalf("step %d: %s -> %s: %v", step, c.State, to, err)
			}
		} else if _, err := s.UpdateCalc(id, mutate); err != nil {
			t.Fatalf("step %d: update: %v", step, err)
		}
		checkActive(t, s, clusters)
	}
	if active < 30 || movedActive < 5 {
		t.Fatalf("the walk touched active calculations %d times and moved %d to another cluster: too few to test the index", active, movedActive)
	}
	// A rolled-back change leaves the index as it was.
	for _, id := range ids {
		c, _ := s.Calc(id)
		if !c.State.Active() {
			continue
		}
		boom := errors.New("boom")
		_, err := s.Transition(id, StateSucceeded, "", func(_ *Tx, c *Calculation) error { c.JobID = "changed"; return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("Transition = %v, want boom", err)
		}
		checkActive(t, s, clusters)
		break
	}
}

// TestActiveValueRoundTrip encodes and decodes an entry, and refuses every
// truncation of it and trailing garbage without panicking.
func TestActiveValueRoundTrip(t *testing.T) {
	c := Calculation{ID: 77, State: StateRunning, JobID: "12345", Folder: "1732640000_7_h2o", Launch: "batch",
		RawState: "R", WaitingSince: time.Date(2026, 11, 26, 14, 2, 0, 5, time.UTC), WaitNotified: true,
		Progress: Progress{Accepted: true, Cancel: CancelRequested, Files: []string{"not indexed"}, Reason: "Priority", Node: "node07"}}
	k, v := activeKey("loc", c.State, c.ID), activeValue(c)
	got, err := decodeActive(k, v, len(clusterPrefix("loc")), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ActiveJob{ID: 77, State: StateRunning, JobID: "12345", Folder: "1732640000_7_h2o", Launch: "batch",
		RawState: "R", WaitingSince: time.Unix(0, c.WaitingSince.UnixNano()), WaitNotified: true, Cancel: CancelRequested, Accepted: true,
		Reason: "Priority", Node: "node07"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v\nwant %+v", got, want)
	}
	seen := map[string]string{}
	for range 2 { // interned strings: the same answer, the first time and from the map
		if got, err := decodeActive(k, v, len(clusterPrefix("loc")), seen); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded with interning %+v, %v\nwant %+v", got, err, want)
		}
	}
	if string(activeValue(c)) != string(v) {
		t.Fatal("the same record encoded to different bytes")
	}
	for n := range len(v) {
		if _, err := decodeActive(k, v[:n], len(clusterPrefix("loc")), seen); err == nil {
			t.Fatalf("a value cut to %d of %d bytes decoded without error", n, len(v))
		}
	}
	if _, err := decodeActive(k, append(v[:len(v):len(v)], 0), len(clusterPrefix("loc")), nil); err == nil {
		t.Fatal("trailing bytes decoded without error")
	}
	bad := append([]byte{activeFormat + 1}, v[1:]...)
	if _, err := decodeActive(k, bad, len(clusterPrefix("loc")), nil); err == nil || !strings.Contains(err.Error(), "format") {
		t.Fatalf("unknown format: %v", err)
	}
	if _, err := decodeActive(k[:len(k)-3], v, len(clusterPrefix("loc")), nil); err == nil {
		t.Fatal("a short key decoded without error")
	}
}

// TestMigrateBuildsActiveIndex writes a store as schema 1 left it (every
// bucket of schema 1, no calcs_active, version 1), migrates it, and checks
// that the index holds the active calculations of every cluster; a second
// Migrate is a no-op, and the index then follows changes.
func TestMigrateBuildsActiveIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	s.now = clk.now
	u := newUser(t, s, 1000)
	clusters := []string{"loc", "hpc"}
	for i := range 30 {
		c, err := s.CreateCalculation(Calculation{UserID: u.ID, Folder: fmt.Sprintf("f%d", i), Cluster: clusters[i%2]}, window, clk.t)
		if err != nil {
			t.Fatal(err)
		}
		path := [][]State{
			nil, {StateStaged}, {StateStaged, StateSubmitted}, {StateStaged, StateSubmitted, StatePending},
			{StateStaged, StateSubmitted, StateRunning}, {StateStaged, StateSubmitted, StateRunning, StateSucceeded},
			{StateStaged, StateSubmitted, StateRunning, StateFailed, StateRetrieved, StateDelivered, StateNotified},
		}[i%7]
		for _, to := range path {
			if _, err := s.Transition(c.ID, to, "", func(_ *Tx, c *Calculation) error {
				c.JobID, c.RawState = fmt.Sprint(100+c.ID), string(to)
				c.Progress.Accepted = true
				if c.ID%5 == 0 {
					c.WaitingSince = clk.t
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := wantActive(t, s)
	if len(want["loc"]) == 0 || len(want["hpc"]) == 0 {
		t.Fatalf("the seed has no active calculations on a cluster: %v", want)
	}
	// Back to schema 1: its buckets hold the same records; calcs_active is new.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bCalcActive); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(metaSchema, u64(1))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("Open of a schema-1 store = %v, want ErrSchemaTooOld", err)
	}
	s, err = Open(path, Options{AllowOldSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.now = clk.now
	from, to, err := s.Migrate()
	if err != nil || from != 1 || to != LatestSchema() || LatestSchema() < 2 {
		t.Fatalf("Migrate = %d, %d, %v; want 1, %d", from, to, err, LatestSchema())
	}
	checkActive(t, s, clusters)
	if from, to, err := s.Migrate(); err != nil || from != to {
		t.Fatalf("second Migrate = %d, %d, %v; want a no-op", from, to, err)
	}
	checkActive(t, s, clusters)
	// The built index is maintained like one written from the start.
	for _, j := range want["loc"] {
		if _, err := s.Transition(j.ID, StateCancelled, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	checkActive(t, s, clusters)
	if got, _ := s.ActiveJobs("loc"); len(got) != 0 {
		t.Fatalf("ActiveJobs(loc) after cancelling all = %+v", got)
	}
}
