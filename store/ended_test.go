package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// wantEnded derives the calcs_ended index from the full records: every
// calculation in a final state, in (end time, id) order.
func wantEnded(t *testing.T, s *Store) []EndedCalc {
	t.Helper()
	all, err := s.CalcsByState(States...)
	if err != nil {
		t.Fatal(err)
	}
	var want []EndedCalc
	for _, c := range all {
		if !c.State.Final() {
			continue
		}
		want = append(want, EndedCalc{ID: c.ID, At: time.Unix(0, c.History[len(c.History)-1].At.UnixNano()), Cluster: c.Cluster,
			CleanupDue: c.State == StateNotified && !c.Progress.Cleaned && c.Submitted(),
			NoticeDue:  c.State == StateError && !c.Progress.ErrorNotified})
	}
	slices.SortFunc(want, func(a, b EndedCalc) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return int(a.ID) - int(b.ID)
	})
	return want
}

// checkEnded compares EndedCalcs (all of it, and page by page) and EndedDue
// with what the records say, and counts the bucket's entries so that a stale
// entry is caught too.
func checkEnded(t *testing.T, s *Store) {
	t.Helper()
	want := wantEnded(t, s)
	got, err := s.EndedCalcs(EndedCalc{}, maxNanoTime, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
		t.Fatalf("EndedCalcs =\n%+v\nwant (from the records)\n%+v", got, want)
	}
	var paged []EndedCalc
	for after := (EndedCalc{}); ; {
		page, err := s.EndedCalcs(after, maxNanoTime, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1]
	}
	if !reflect.DeepEqual(paged, got) {
		t.Fatalf("EndedCalcs by pages of 3 =\n%+v\nat once\n%+v", paged, got)
	}
	var wantDue []EndedCalc
	for _, e := range want {
		if e.NoticeDue || e.CleanupDue && e.Cluster == "hpc" {
			wantDue = append(wantDue, e)
		}
	}
	due, err := s.EndedDue(func(cluster string) bool { return cluster == "hpc" })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(due, wantDue) && len(due)+len(wantDue) > 0 {
		t.Fatalf("EndedDue(hpc) =\n%+v\nwant\n%+v", due, wantDue)
	}
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bCalcEnded).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("calcs_ended holds %d entries, the records say %d", n, len(want))
	}
}

// TestEndedIndexFollowsChanges drives calculations through random transitions
// (into notified and error, and out of error by an admin's retry) and updates
// (cleanup and error notice flags, cluster) with a moving clock, and checks
// after each step that the index equals what the records say; then that a
// batch that fails and a change whose mutate fails leave it as it was.
func TestEndedIndexFollowsChanges(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 1000)
	clusters := []string{"loc", "hpc", ""}
	rng := rand.New(rand.NewPCG(5, 8))
	var ids []uint64
	for i := range 30 {
		c, err := s.CreateCalculation(Calculation{UserID: u.ID, InputName: "in.inp", Folder: fmt.Sprintf("f%d", i),
			Cluster: clusters[i%len(clusters)]}, window, clk.t)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	checkEnded(t, s)
	into, retried, flagged := 0, 0, 0
	for step := range 1500 {
		clk.t = clk.t.Add(time.Duration(rng.IntN(3)) * time.Minute) // sometimes two changes at one instant
		id := ids[rng.IntN(len(ids))]
		c, err := s.Calc(id)
		if err != nil {
			t.Fatal(err)
		}
		mutate := func(_ *Tx, c *Calculation) error {
			switch rng.IntN(4) {
			case 0:
				c.Progress.Cleaned = !c.Progress.Cleaned
			case 1:
				c.Progress.ErrorNotified = !c.Progress.ErrorNotified
			case 2:
				c.Cluster = clusters[rng.IntN(len(clusters))]
			}
			if c.State.Final() {
				flagged++
			}
			return nil
		}
		if tos := transitions[c.State]; len(tos) > 0 && rng.IntN(2) == 0 {
			// Mostly forward: the walk reaches the end often.
			to := tos[rng.IntN(len(tos))]
			if to == StateError && rng.IntN(3) != 0 && len(tos) > 1 {
				to = tos[0]
			}
			if to.Final() {
				into++
			}
			if c.State == StateError {
				retried++
			}
			if _, err := s.Transition(id, to, "step", mutate); err != nil {
				t.Fatalf("step %d: %s -> %s: %v", step, c.State, to, err)
			}
		} else if _, err := s.UpdateCalc(id, mutate); err != nil {
			t.Fatalf("step %d: update: %v", step, err)
		}
		checkEnded(t, s)
	}
	if into < 30 || retried < 5 || flagged < 100 {
		t.Fatalf("the walk entered a final state %d times, retried %d, changed final calculations %d times: too few to test the index",
			into, retried, flagged)
	}

	// Rolled-back changes leave the index as it was.
	var open, final []uint64
	for _, id := range ids {
		c, _ := s.Calc(id)
		switch {
		case c.State == StateError:
			final = append(final, id)
		case c.State != StateNotified:
			open = append(open, id)
		}
	}
	if len(open) < 2 || len(final) < 1 {
		t.Fatalf("after the walk %d calculations are not final and %d in error: too few", len(open), len(final))
	}
	before := endedBucket(t, s)
	clk.t = clk.t.Add(time.Hour)
	_, err := s.ChangeCalcs([]CalcChange{
		{ID: open[0], To: StateError, Note: "written first"},
		{ID: final[0], To: StateReceived, Note: "retry"},
		{ID: open[1], To: "flying"},
	})
	if !errors.Is(err, ErrBadTransition) {
		t.Fatalf("ChangeCalcs = %v, want ErrBadTransition", err)
	}
	if after := endedBucket(t, s); !reflect.DeepEqual(after, before) {
		t.Fatalf("a batch that failed changed calcs_ended:\n%q\nwas\n%q", after, before)
	}
	boom := errors.New("boom")
	if _, err := s.Transition(open[0], StateError, "", func(*Tx, *Calculation) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Transition = %v, want boom", err)
	}
	if _, err := s.UpdateCalc(final[0], func(_ *Tx, c *Calculation) error { c.Progress.ErrorNotified = !c.Progress.ErrorNotified; return boom }); !errors.Is(err, boom) {
		t.Fatalf("UpdateCalc = %v, want boom", err)
	}
	if after := endedBucket(t, s); !reflect.DeepEqual(after, before) {
		t.Fatalf("a change that failed changed calcs_ended:\n%q\nwas\n%q", after, before)
	}
	checkEnded(t, s)
}

// endedBucket returns calcs_ended's raw entries.
func endedBucket(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bCalcEnded).ForEach(func(k, v []byte) error { out[string(k)] = string(v); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEndedCalcsRange: until is inclusive, after excludes its own entry and
// takes the ones at the same instant with a larger id, limit cuts the page.
func TestEndedCalcsRange(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 1000)
	t0 := clk.t
	var ids []uint64
	for i := range 4 {
		c, err := s.CreateCalculation(Calculation{UserID: u.ID, InputName: "in.inp", Cluster: "loc"}, window, clk.t)
		if err != nil {
			t.Fatal(err)
		}
		clk.t = t0.Add(time.Duration(i/2) * time.Hour) // 0, 0, 1 h, 1 h
		if _, err := s.Transition(c.ID, StateError, "no", nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	idsOf := func(es []EndedCalc) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		after EndedCalc
		until time.Time
		limit int
		want  []uint64
	}{
		{EndedCalc{}, t0.Add(-time.Nanosecond), 0, nil},
		{EndedCalc{}, t0, 0, ids[:2]},
		{EndedCalc{}, t0.Add(time.Hour), 0, ids},
		{EndedCalc{}, t0.Add(time.Hour), 3, ids[:3]},
		{EndedCalc{ID: ids[0], At: t0}, t0.Add(time.Hour), 0, ids[1:]},
		{EndedCalc{ID: ids[1], At: t0}, t0, 0, nil},
		{EndedCalc{ID: ids[2], At: t0.Add(time.Hour)}, maxNanoTime, 0, ids[3:]},
		{EndedCalc{ID: 999, At: t0.Add(time.Minute)}, maxNanoTime, 0, ids[2:]}, // an entry that is gone
	} {
		got, err := s.EndedCalcs(tc.after, tc.until, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(idsOf(got), tc.want) {
			t.Errorf("EndedCalcs(after %d at %s, until %s, limit %d) = %v, want %v", tc.after.ID, tc.after.At, tc.until, tc.limit, idsOf(got), tc.want)
		}
	}
}

// TestEndedValueRoundTrip refuses every truncation of an entry, trailing
// garbage and another format without panicking.
func TestEndedValueRoundTrip(t *testing.T) {
	c := Calculation{ID: 7, State: StateError, Cluster: "hpc", History: []Transition{{State: StateError, At: time.Unix(1700000000, 5)}}}
	k, v := endedKey(c), endedValue(c)
	e, err := decodeEnded(k, v, nil)
	if want := (EndedCalc{ID: 7, At: time.Unix(1700000000, 5), Cluster: "hpc", NoticeDue: true}); err != nil || e != want {
		t.Fatalf("decode = %+v, %v; want %+v", e, err, want)
	}
	for n := range len(v) {
		if _, err := decodeEnded(k, v[:n], nil); err == nil {
			t.Errorf("a value cut to %d of %d bytes decoded", n, len(v))
		}
	}
	if _, err := decodeEnded(k, append(slices.Clone(v), 0), nil); err == nil {
		t.Error("trailing byte accepted")
	}
	if _, err := decodeEnded(k, append([]byte{endedFormat + 1}, v[1:]...), nil); err == nil {
		t.Error("another format accepted")
	}
	if _, err := decodeEnded(k[:15], v, nil); err == nil {
		t.Error("short key accepted")
	}
}

// copySchema4 copies testdata/schema4.bolt, a store written through the store
// API by the hpcbot of schema 4 (commit e5a3d02): one user, twelve
// calculations on clusters "loc" and "hpc" created days apart, of them four
// notified (one with its remote folder removed), two in error before submit
// and two after (one notice queued), two running and two retrieved; no
// calcs_ended bucket.
func copySchema4(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "schema4.bolt"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "schema4.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMigrateBuildsEndedIndex migrates the schema-4 file and checks that
// calcs_ended holds exactly the notified and error calculations, at the time
// each entered its state, with the flags their records say; a second Migrate
// is a no-op, and the index then follows changes.
func TestMigrateBuildsEndedIndex(t *testing.T) {
	path := copySchema4(t)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("Open of a schema-4 store = %v, want ErrSchemaTooOld", err)
	}
	s, err := Open(path, Options{AllowOldSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bCalcEnded) != nil {
			t.Fatal("the schema-4 file already has calcs_ended")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if from, to, err := s.Migrate(); err != nil || from != 4 || to != LatestSchema() || to < 5 {
		t.Fatalf("Migrate = %d, %d, %v", from, to, err)
	}
	got, err := s.EndedCalcs(EndedCalc{}, maxNanoTime, 0)
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, e := range got {
		summary = append(summary, fmt.Sprintf("%d %s cleanup=%t notice=%t", e.ID, e.Cluster, e.CleanupDue, e.NoticeDue))
	}
	want := []string{
		"1 loc cleanup=false notice=false", // notified, cleaned
		"2 hpc cleanup=true notice=false",
		"3 loc cleanup=false notice=true",  // error before submit
		"4 hpc cleanup=false notice=false", // error, notice queued
		"7 loc cleanup=true notice=false",
		"8 hpc cleanup=true notice=false",
		"9 loc cleanup=false notice=true",
		"10 hpc cleanup=false notice=true",
	}
	if !slices.Equal(summary, want) {
		t.Fatalf("calcs_ended after migration:\n%q\nwant\n%q", summary, want)
	}
	checkEnded(t, s) // times and flags against the records
	if from, to, err := s.Migrate(); err != nil || from != to {
		t.Fatalf("second Migrate = %d, %d, %v; want a no-op", from, to, err)
	}
	if _, err := s.Transition(10, StateReceived, "retry", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateCalc(2, func(_ *Tx, c *Calculation) error { c.Progress.Cleaned = true; return nil }); err != nil {
		t.Fatal(err)
	}
	checkEnded(t, s)
}
