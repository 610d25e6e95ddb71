package store

import (
	"fmt"
	"testing"
	"time"
)

// seedCalcs creates n calculations spread over users; one in ten is left
// running, the rest notified (a store after months of use).
func seedCalcs(b *testing.B, s *Store, n int) []User {
	b.Helper()
	var users []User
	for range 50 {
		u, err := s.CreateUser(User{Limit: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		users = append(users, u)
	}
	// One transaction for the whole seed keeps it fast; it writes what
	// CreateCalculation and Transition would.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := s.update(func(t *Tx) error {
		for i := range n {
			id, err := t.bucket(bCalcs).NextSequence()
			if err != nil {
				return err
			}
			created := t0.Add(time.Duration(i) * time.Minute)
			st := StateNotified
			if i%10 == 0 {
				st = StateRunning
			}
			c := Calculation{
				ID: id, UserID: users[i%len(users)].ID, InputName: fmt.Sprintf("in%d.inp", i),
				Program: "orca", Cluster: "loc", Argv: []string{"in.inp"}, JobID: fmt.Sprint(100000 + i),
				State: st, Created: created,
				History: []Transition{{StateReceived, created, ""}, {StateStaged, created, ""}, {StateSubmitted, created, ""}, {st, created, ""}},
			}
			if err := t.putCalc(c, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return users
}

func BenchmarkCreateCalculation(b *testing.B) {
	s, _ := openTest(b)
	users := seedCalcs(b, s, 10_000)
	now := time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC) // the window holds ~200 calcs per user
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, err := s.CreateCalculation(Calculation{UserID: users[i%len(users)].ID, UpdateID: int64(i + 1), InputName: "h2o.inp"}, window, now)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCalcsByState(b *testing.B) {
	s, _ := openTest(b)
	seedCalcs(b, s, 10_000)
	b.ResetTimer()
	for b.Loop() {
		got, err := s.CalcsByState(StateSubmitted, StatePending, StateRunning)
		if err != nil || len(got) != 1000 {
			b.Fatalf("%d calcs, %v", len(got), err)
		}
	}
}

func BenchmarkCountCalcsSince(b *testing.B) {
	s, _ := openTest(b)
	users := seedCalcs(b, s, 10_000)
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(10_000*time.Minute - window)
	for b.Loop() {
		if _, err := s.CountCalcsSince(users[0].ID, since); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkActiveJobs reads the same 1,000 active calculations as
// BenchmarkCalcsByState, through the calcs_active index (no record decoded).
func BenchmarkActiveJobs(b *testing.B) {
	s, _ := openTest(b)
	seedCalcs(b, s, 10_000)
	b.ResetTimer()
	for b.Loop() {
		got, err := s.ActiveJobs("loc")
		if err != nil || len(got) != 1000 {
			b.Fatalf("%d jobs, %v", len(got), err)
		}
	}
}
