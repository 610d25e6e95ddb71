package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func newUser(t testing.TB, s *Store, limit int) User {
	t.Helper()
	u, err := s.CreateUser(User{FirstName: "Ada", LastName: "Lovelace", Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

const window = 720 * time.Hour

func TestQuotaRace(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 5)
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		created, refused int
		unexpected       []error
	)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CreateCalculation(Calculation{UserID: u.ID, InputName: fmt.Sprintf("in%d.inp", i), UpdateID: int64(1000 + i)}, window, clk.t)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case errors.Is(err, ErrQuotaExceeded):
				refused++
			default:
				unexpected = append(unexpected, err)
			}
		}()
	}
	wg.Wait()
	if created != 5 || refused != 45 || len(unexpected) > 0 {
		t.Fatalf("created %d, refused %d, other errors %v; want 5, 45, none", created, refused, unexpected)
	}
	n, err := s.CountCalcsSince(u.ID, clk.t.Add(-window))
	if err != nil || n != 5 {
		t.Fatalf("CountCalcsSince = %d, %v; want 5", n, err)
	}
	got, err := s.CalcsByState(StateReceived)
	if err != nil || len(got) != 5 {
		t.Fatalf("CalcsByState(received) = %d calcs, %v; want 5", len(got), err)
	}
}

func TestQuotaWindowAndRule(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 2)
	t0 := clk.t
	mk := func(at time.Time) (Calculation, error) {
		return s.CreateCalculation(Calculation{UserID: u.ID, InputName: "a.inp"}, window, at)
	}
	// Created exactly at now-window is not "after" it: outside the window at t0.
	if _, err := mk(t0.Add(-window)); err != nil {
		t.Fatal(err)
	}
	if _, err := mk(t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := mk(t0); err != nil {
		t.Fatalf("third calc with the first one outside the window: %v", err)
	}
	if _, err := mk(t0); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("fourth calc = %v, want ErrQuotaExceeded", err)
	}

	// An error before submit does not count; an error after submit does.
	recent, err := s.CalcsOfUser(u.ID, t0.Add(-window), 0)
	if err != nil || len(recent) != 2 {
		t.Fatalf("CalcsOfUser = %d, %v; want 2", len(recent), err)
	}
	if _, err := s.Transition(recent[0].ID, StateError, "upload failed", nil); err != nil {
		t.Fatal(err)
	}
	c, err := mk(t0)
	if err != nil {
		t.Fatalf("calc after an unsubmitted one went to error: %v", err)
	}
	for _, to := range []State{StateStaged, StateSubmitted, StateError} {
		if _, err := s.Transition(c.ID, to, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mk(t0); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("a submitted calc that failed still counts: got %v, want ErrQuotaExceeded", err)
	}
	// The admin's retry makes the first one count again.
	if _, err := s.Transition(recent[0].ID, StateReceived, "retry", nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountCalcsSince(u.ID, t0.Add(-window)); n != 3 {
		t.Fatalf("CountCalcsSince after retry = %d, want 3", n)
	}
}

func TestCreateCalculationRefusals(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 5)
	if _, err := s.UpdateUser(u.ID, func(_ *Tx, u *User) error { u.Blocked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCalculation(Calculation{UserID: u.ID}, window, clk.t); !errors.Is(err, ErrBlocked) {
		t.Errorf("blocked user: %v, want ErrBlocked", err)
	}
	if _, err := s.CreateCalculation(Calculation{UserID: 999}, window, clk.t); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	if _, err := s.CreateCalculation(Calculation{UserID: u.ID}, 0, clk.t); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero window: %v, want ErrInvalid", err)
	}
	zero := newUser(t, s, 0)
	if _, err := s.CreateCalculation(Calculation{UserID: zero.ID}, window, clk.t); !errors.Is(err, ErrQuotaExceeded) {
		t.Errorf("limit 0: %v, want ErrQuotaExceeded", err)
	}
}

func TestDuplicateUpdate(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 5)
	first, err := s.CreateCalculation(Calculation{UserID: u.ID, UpdateID: 77, InputName: "a.inp"}, window, clk.t)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateCalculation(Calculation{UserID: u.ID, UpdateID: 77, InputName: "b.inp"}, window, clk.t)
	if err != ErrDuplicateUpdate {
		t.Fatalf("second create = %v, want ErrDuplicateUpdate", err)
	}
	if again.ID != first.ID || again.InputName != "a.inp" {
		t.Fatalf("duplicate returned %+v, want the first calculation %d", again, first.ID)
	}
	// Even when the user is now over quota or blocked, the duplicate is recognised first.
	if _, err := s.UpdateUser(u.ID, func(_ *Tx, u *User) error { u.Blocked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCalculation(Calculation{UserID: u.ID, UpdateID: 77}, window, clk.t); err != ErrDuplicateUpdate {
		t.Fatalf("duplicate from a blocked user = %v, want ErrDuplicateUpdate", err)
	}
	// UpdateID 0 means "none": never a duplicate.
	if _, err := s.UpdateUser(u.ID, func(_ *Tx, u *User) error { u.Blocked = false; return nil }); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.CreateCalculation(Calculation{UserID: u.ID}, window, clk.t); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := s.CalcsOfUser(u.ID, time.Time{}, 0)
	if len(all) != 3 {
		t.Fatalf("%d calcs, want 3", len(all))
	}
}

// TestDuplicateKey: an idempotency key (Run again) makes at most one
// calculation, as an update id does, and CalcCreatedBy finds it by either.
func TestDuplicateKey(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 5)
	if _, err := s.CalcCreatedBy(0, "again/1/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CalcCreatedBy before any = %v, want ErrNotFound", err)
	}
	first, err := s.CreateCalculation(Calculation{UserID: u.ID, Key: "again/1/x", InputName: "a.inp"}, window, clk.t)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateCalculation(Calculation{UserID: u.ID, Key: "again/1/x", InputName: "b.inp"}, window, clk.t)
	if err != ErrDuplicateUpdate || again.ID != first.ID || again.InputName != "a.inp" {
		t.Fatalf("second create = %d %q %v, want calculation %d and ErrDuplicateUpdate", again.ID, again.InputName, err, first.ID)
	}
	other, err := s.CreateCalculation(Calculation{UserID: u.ID, Key: "again/1/y", UpdateID: 9}, window, clk.t)
	if err != nil || other.ID == first.ID {
		t.Fatalf("another key = %d %v, want a new calculation", other.ID, err)
	}
	for _, tt := range []struct {
		update int64
		key    string
		want   uint64
	}{{0, "again/1/x", first.ID}, {0, "again/1/y", other.ID}, {9, "", other.ID}, {9, "again/1/x", other.ID}} {
		got, err := s.CalcCreatedBy(tt.update, tt.key)
		if err != nil || got.ID != tt.want {
			t.Errorf("CalcCreatedBy(%d, %q) = %d %v, want %d", tt.update, tt.key, got.ID, err, tt.want)
		}
	}
	if _, err := s.CalcCreatedBy(10, "again/2/x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CalcCreatedBy of neither = %v, want ErrNotFound", err)
	}
	all, _ := s.CalcsOfUser(u.ID, time.Time{}, 0)
	if len(all) != 2 {
		t.Fatalf("%d calcs, want 2", len(all))
	}
}

// pathTo returns a sequence of allowed transitions from received to s.
func pathTo(s State) []State {
	switch s {
	case StateReceived:
		return nil
	case StateStaged:
		return []State{StateStaged}
	case StateSubmitted:
		return []State{StateStaged, StateSubmitted}
	case StatePending, StateRunning, StateSucceeded, StateFailed, StateTimedOut:
		return []State{StateStaged, StateSubmitted, s}
	case StateCancelled:
		return []State{StateCancelled}
	case StateRetrieved, StateDelivered, StateNotified:
		p := []State{StateStaged, StateSubmitted, StateSucceeded, StateRetrieved}
		if s != StateRetrieved {
			p = append(p, StateDelivered)
		}
		if s == StateNotified {
			p = append(p, StateNotified)
		}
		return p
	case StateDeliveryFailed:
		return []State{StateStaged, StateSubmitted, StateSucceeded, StateRetrieved, StateDeliveryFailed}
	case StateError:
		return []State{StateError}
	}
	panic(s)
}

func TestTransitionTable(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 1<<30)
	want := map[[2]State]bool{}
	add := func(from State, tos ...State) {
		for _, to := range tos {
			want[[2]State{from, to}] = true
		}
	}
	add(StateReceived, StateStaged, StateCancelled)
	add(StateStaged, StateSubmitted, StateCancelled)
	add(StateSubmitted, StatePending, StateRunning, StateSucceeded, StateFailed, StateCancelled, StateTimedOut)
	add(StatePending, StateRunning, StateSucceeded, StateFailed, StateCancelled, StateTimedOut)
	add(StateRunning, StateSucceeded, StateFailed, StateCancelled, StateTimedOut)
	add(StateSucceeded, StateRetrieved)
	add(StateFailed, StateRetrieved)
	add(StateCancelled, StateRetrieved)
	add(StateTimedOut, StateRetrieved)
	add(StateRetrieved, StateDelivered, StateDeliveryFailed)
	add(StateDeliveryFailed, StateDelivered)
	add(StateDelivered, StateNotified)
	for _, st := range States {
		if st != StateNotified && st != StateError {
			add(st, StateError)
		}
	}
	add(StateError, StateReceived)

	table := Transitions()
	for _, from := range States {
		for _, to := range States {
			if from == to {
				continue
			}
			allowed := want[[2]State{from, to}]
			if CanTransition(from, to) != allowed {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, !allowed, allowed)
			}
			inTable := false
			for _, x := range table[from] {
				inTable = inTable || x == to
			}
			if inTable != allowed {
				t.Errorf("Transitions()[%s] has %s: %v, want %v", from, to, inTable, allowed)
			}
			// Drive a real calculation to from, then try to.
			c, err := s.CreateCalculation(Calculation{UserID: u.ID}, window, clk.t)
			if err != nil {
				t.Fatal(err)
			}
			for _, step := range pathTo(from) {
				if _, err := s.Transition(c.ID, step, "", nil); err != nil {
					t.Fatalf("path to %s: %v", from, err)
				}
			}
			got, err := s.Transition(c.ID, to, "note", nil)
			switch {
			case allowed && err != nil:
				t.Errorf("Transition %s -> %s: %v", from, to, err)
			case allowed && (got.State != to || got.History[len(got.History)-1].State != to):
				t.Errorf("Transition %s -> %s left state %s, history %v", from, to, got.State, got.History)
			case !allowed && !errors.Is(err, ErrBadTransition):
				t.Errorf("Transition %s -> %s = %v, want ErrBadTransition", from, to, err)
			}
			if !allowed {
				after, _ := s.Calc(c.ID)
				if after.State != from {
					t.Errorf("refused %s -> %s still changed the state to %s", from, to, after.State)
				}
			}
		}
	}
	if _, err := s.Transition(1, "bogus", "", nil); !errors.Is(err, ErrBadTransition) {
		t.Errorf("unknown state: %v", err)
	}
	if _, err := s.Transition(1<<40, StateStaged, "", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown calc: %v", err)
	}
}

func TestTransitionDetails(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 10)
	c, err := s.CreateCalculation(Calculation{UserID: u.ID, TelegramID: 42, InputName: "h2o.inp", Argv: []string{"h2o.inp"}}, window, clk.t)
	if err != nil {
		t.Fatal(err)
	}
	// Same-state update: bookkeeping, no history entry.
	c2, err := s.Transition(c.ID, StateReceived, "", func(_ *Tx, c *Calculation) error { c.Attempts = 3; return nil })
	if err != nil || c2.Attempts != 3 || len(c2.History) != 1 {
		t.Fatalf("same-state Transition = %+v, %v", c2, err)
	}
	// mutate may not touch indexed fields.
	for name, bad := range map[string]func(*Calculation){
		"state":   func(c *Calculation) { c.State = StateRunning },
		"user":    func(c *Calculation) { c.UserID++ },
		"update":  func(c *Calculation) { c.UpdateID = 5 },
		"created": func(c *Calculation) { c.Created = c.Created.Add(time.Second) },
		"history": func(c *Calculation) { c.History = nil },
	} {
		if _, err := s.UpdateCalc(c.ID, func(_ *Tx, c *Calculation) error { bad(c); return nil }); !errors.Is(err, ErrInvalid) {
			t.Errorf("mutate changing %s: %v, want ErrInvalid", name, err)
		}
	}
	// A failing mutate writes nothing.
	boom := errors.New("boom")
	if _, err := s.Transition(c.ID, StateStaged, "", func(_ *Tx, c *Calculation) error { c.JobID = "x"; return boom }); err != boom {
		t.Fatalf("failing mutate: %v", err)
	}
	if got, _ := s.Calc(c.ID); got.State != StateReceived || got.JobID != "" {
		t.Fatalf("failing mutate left %+v", got)
	}
	// Error sets Error and appends an event; retry clears the bookkeeping.
	clk.t = clk.t.Add(time.Minute)
	e, err := s.Transition(c.ID, StateError, "cluster loc unreachable", func(_ *Tx, c *Calculation) error { c.WaitNotified = true; return nil })
	if err != nil || e.Error != "cluster loc unreachable" || !e.History[1].At.Equal(clk.t) || e.History[1].Note != "cluster loc unreachable" {
		t.Fatalf("to error: %+v, %v", e, err)
	}
	r, err := s.Transition(c.ID, StateReceived, "admin retry", nil)
	if err != nil || r.Error != "" || r.Attempts != 0 || r.WaitNotified {
		t.Fatalf("retry: %+v, %v", r, err)
	}
	evs, _ := s.Events(time.Time{}, 0)
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action)
	}
	if fmt.Sprint(actions) != fmt.Sprint([]string{ActionCalcRetry, ActionCalcError, ActionCalcCreate}) {
		t.Fatalf("events newest first = %v", actions)
	}
	// Outbox and state change commit together.
	for _, st := range pathTo(StateDelivered) {
		if _, err := s.Transition(c.ID, st, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Transition(c.ID, StateNotified, "", func(tx *Tx, c *Calculation) error {
		_, err := tx.OutboxPut(c.Subject()+"/finished", OutMsg{ChatID: 1, Kind: "calc.finished"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pend, _ := s.OutboxPending()
	if len(pend) != 1 || pend[0].Key != "calc/1/finished" {
		t.Fatalf("outbox after notified = %+v", pend)
	}
	// And roll back together: a refused transition queues nothing.
	_, err = s.Transition(c.ID, StateStaged, "", func(tx *Tx, c *Calculation) error {
		_, err := tx.OutboxPut("never", OutMsg{ChatID: 1})
		return err
	})
	if !errors.Is(err, ErrBadTransition) {
		t.Fatal(err)
	}
	_, err = s.UpdateCalc(c.ID, func(tx *Tx, c *Calculation) error {
		if _, err := tx.OutboxPut("never", OutMsg{ChatID: 1}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatal(err)
	}
	if pend, _ := s.OutboxPending(); len(pend) != 1 {
		t.Fatalf("outbox after rolled-back txs = %+v", pend)
	}
}

func TestCalcsByStateAndUser(t *testing.T) {
	s, clk := openTest(t)
	a := newUser(t, s, 100)
	b := newUser(t, s, 100)
	t0 := clk.t
	var ids []uint64
	for i := range 10 {
		u := a
		if i%2 == 1 {
			u = b
		}
		c, err := s.CreateCalculation(Calculation{UserID: u.ID}, window, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	for _, id := range ids[:4] {
		if _, err := s.Transition(id, StateStaged, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids[:2] {
		if _, err := s.Transition(id, StateSubmitted, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	check := func(states []State, want []uint64) {
		t.Helper()
		got, err := s.CalcsByState(states...)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []uint64
		for _, c := range got {
			gotIDs = append(gotIDs, c.ID)
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(want) {
			t.Errorf("CalcsByState(%v) = %v, want %v", states, gotIDs, want)
		}
	}
	check([]State{StateSubmitted}, ids[:2])
	check([]State{StateStaged}, ids[2:4])
	check([]State{StateReceived}, ids[4:])
	check([]State{StateReceived, StateSubmitted}, append(append([]uint64{}, ids[:2]...), ids[4:]...))
	check([]State{StateRunning}, nil)

	// a has ids 0,2,4,6,8 at minutes 0,2,4,6,8. Newest first, after since, limited.
	got, err := s.CalcsOfUser(a.ID, t0.Add(2*time.Minute), 2)
	if err != nil || len(got) != 2 || got[0].ID != ids[8] || got[1].ID != ids[6] {
		t.Fatalf("CalcsOfUser limit 2 = %+v, %v", got, err)
	}
	got, _ = s.CalcsOfUser(a.ID, t0.Add(2*time.Minute), 0)
	if len(got) != 3 { // minutes 4, 6, 8: "after since" excludes minute 2
		t.Fatalf("CalcsOfUser since = %d calcs, want 3", len(got))
	}
	got, _ = s.CalcsOfUser(b.ID, time.Time{}, 0)
	if len(got) != 5 || got[4].ID != ids[1] {
		t.Fatalf("CalcsOfUser(b) = %d calcs", len(got))
	}
	if got, _ := s.CalcsOfUser(999, time.Time{}, 0); len(got) != 0 {
		t.Fatalf("CalcsOfUser(unknown) = %d calcs", len(got))
	}

	users, orgs, err := s.Usage(t0.Add(3 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// a: minutes 4,6,8 → 3; b: minutes 5,7,9 → 3; tie broken by id.
	if len(users) != 2 || users[0].User.ID != a.ID || users[0].Count != 3 || users[1].Count != 3 {
		t.Fatalf("Usage users = %+v", users)
	}
	if len(orgs) != 1 || orgs[0].Org != "" || orgs[0].Count != 6 || orgs[0].Users != 2 {
		t.Fatalf("Usage orgs = %+v", orgs)
	}
}

func TestUsageByOrg(t *testing.T) {
	s, clk := openTest(t)
	if err := s.UpsertOrganizations([]Organization{{Label: "ioc", Name: "Organic"}, {Label: "ipc", Name: "Physical"}}); err != nil {
		t.Fatal(err)
	}
	mk := func(org string) User {
		u, err := s.CreateUser(User{Org: org, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	a, b, c := mk("ioc"), mk("ioc"), mk("ipc")
	mk("ipc") // idle: listed with 0, not counted among ipc's active users
	for u, n := range map[uint64]int{a.ID: 1, b.ID: 2, c.ID: 4} {
		for range n {
			if _, err := s.CreateCalculation(Calculation{UserID: u}, window, clk.t); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One of c's fails before submit: in Total, not in Count.
	cs, _ := s.CalcsOfUser(c.ID, time.Time{}, 1)
	if _, err := s.Transition(cs[0].ID, StateError, "bad input", nil); err != nil {
		t.Fatal(err)
	}
	users, orgs, err := s.Usage(clk.t.Add(-window))
	if err != nil {
		t.Fatal(err)
	}
	var gotUsers []string
	for _, u := range users {
		gotUsers = append(gotUsers, fmt.Sprintf("%d:%d/%d", u.User.ID, u.Count, u.Total))
	}
	if want := fmt.Sprint([]string{"3:3/4", "2:2/2", "1:1/1", "4:0/0"}); fmt.Sprint(gotUsers) != want {
		t.Errorf("users = %v, want %s", gotUsers, want)
	}
	var gotOrgs []string
	for _, o := range orgs {
		gotOrgs = append(gotOrgs, fmt.Sprintf("%s(%s):%d users %d/%d", o.Org, o.Name, o.Users, o.Count, o.Total))
	}
	// Equal Count: the one with more calculations in all comes first.
	if want := fmt.Sprint([]string{"ipc(Physical):1 users 3/4", "ioc(Organic):2 users 3/3"}); fmt.Sprint(gotOrgs) != want {
		t.Errorf("orgs = %v, want %s", gotOrgs, want)
	}
}

// A digest is stored with its calculation and read back whole; a calculation
// stored without one (as every record before digests) reads back with none.
func TestCalcDigestStored(t *testing.T) {
	s, clk := openTest(t)
	u := newUser(t, s, 5)
	c, err := s.CreateCalculation(Calculation{UserID: u.ID, InputName: "water.xyz", UpdateID: 1}, time.Hour, clk.t)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Calc(c.ID); err != nil || got.Digest != nil {
		t.Fatalf("new calculation: digest %+v, %v", got.Digest, err)
	}
	want := Digest{Program: "xtb", Version: "6.5.1", Termination: DigestFailed, TerminationLine: "-1- Error: Atom number missmatch in xyz file",
		Energy: "-5.070544374389", Optimization: true, OptConverged: true, OptCycles: 4, Frequencies: 3, Imaginary: 1,
		LowestFrequency: "-12.34", WallSeconds: 61, GeometryFile: "xtbopt.xyz"}
	if _, err := s.UpdateCalc(c.ID, func(_ *Tx, c *Calculation) error { c.Digest = &want; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Calc(c.ID)
	if err != nil || got.Digest == nil || *got.Digest != want {
		t.Errorf("digest read back %+v, %v; want %+v", got.Digest, err, want)
	}
}

// TestCalcOutcome: how a job ended comes from its last ended state, and a
// success whose program says it failed (the digest) is a failure, for every
// message and listing alike.
func TestCalcOutcome(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := Calculation{History: []Transition{{State: StateReceived, At: t0}, {State: StateRunning, At: t0.Add(time.Minute)}}}
	if _, _, ok := c.Outcome(); ok {
		t.Error("a running job has an outcome")
	}
	c.History = append(c.History, Transition{State: StateSucceeded, At: t0.Add(time.Hour)}, Transition{State: StateRetrieved, At: t0.Add(2 * time.Hour)})
	if s, at, ok := c.Outcome(); !ok || s != StateSucceeded || !at.Equal(t0.Add(time.Hour)) {
		t.Errorf("Outcome = %s %v %v", s, at, ok)
	}
	c.Digest = &Digest{Termination: DigestNormal}
	if s, _, _ := c.Outcome(); s != StateSucceeded {
		t.Errorf("normal digest: %s", s)
	}
	c.Digest = &Digest{Termination: DigestFailed, TerminationLine: "ORCA finished by error termination in SCF"}
	if s, _, _ := c.Outcome(); s != StateFailed {
		t.Errorf("exit 0 with a failed digest: %s, want failed", s)
	}
}
