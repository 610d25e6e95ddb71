package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestChangeCalcs: a batch records every change in one transaction, with the
// rules of Transition and UpdateCalc (history, the error event).
func TestChangeCalcs(t *testing.T) {
	s, clk := openTest(t)
	ids := newCalcs(t, s, clk.t, 3)
	out, err := s.ChangeCalcs([]CalcChange{
		{ID: ids[0], To: StateStaged, Note: "uploaded"},
		{ID: ids[1], Mutate: func(_ *Tx, c *Calculation) error { c.RawState = "R"; return nil }},
		{ID: ids[2], To: StateError, Note: "broken"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0].State != StateStaged || out[1].RawState != "R" || out[1].State != StateReceived || out[2].State != StateError {
		t.Fatalf("returned %+v", out)
	}
	got := calcsOf(t, s, ids)
	if got[0].State != StateStaged || got[0].History[1].Note != "uploaded" || got[1].RawState != "R" || got[2].Error != "broken" {
		t.Errorf("recorded %+v", got)
	}
	if staged, _ := s.CalcsByState(StateStaged); len(staged) != 1 || staged[0].ID != ids[0] {
		t.Errorf("state index: staged %v", staged)
	}
	if n := countEvents(t, s, ActionCalcError); n != 1 {
		t.Errorf("%d calc_error events, want 1", n)
	}
	if out, err := s.ChangeCalcs(nil); err != nil || out != nil {
		t.Errorf("empty batch: %v, %v", out, err)
	}
}

// TestChangeCalcsRollsBack: when one change of a batch fails, nothing of the
// batch is recorded, the changes before it included (records, indices,
// events), and the error says which calculation failed.
func TestChangeCalcsRollsBack(t *testing.T) {
	stop := errors.New("stop")
	for _, tc := range []struct {
		name string
		bad  CalcChange // the third change; ids[2] is in received
		want error
	}{
		{"mutate fails", CalcChange{To: StateStaged, Mutate: func(*Tx, *Calculation) error { return stop }}, stop},
		{"transition not allowed", CalcChange{To: StateDelivered}, ErrBadTransition},
		{"unknown state", CalcChange{To: "flying"}, ErrBadTransition},
		{"mutate changes the state", CalcChange{Mutate: func(_ *Tx, c *Calculation) error { c.State = StateRunning; return nil }}, ErrInvalid},
		{"missing calculation", CalcChange{ID: 999}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk := openTest(t)
			ids := newCalcs(t, s, clk.t, 3)
			before := calcsOf(t, s, ids)
			bad := tc.bad
			if bad.ID == 0 {
				bad.ID = ids[2]
			}
			_, err := s.ChangeCalcs([]CalcChange{
				{ID: ids[0], To: StateError, Note: "written first"},
				{ID: ids[1], Mutate: func(_ *Tx, c *Calculation) error { c.RawState = "R"; return nil }},
				bad,
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if want := fmt.Sprintf("(calc %d)", bad.ID); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the calculation %q", err, want)
			}
			after := calcsOf(t, s, ids)
			for i := range ids {
				if after[i].State != before[i].State || after[i].RawState != before[i].RawState || len(after[i].History) != len(before[i].History) {
					t.Errorf("calc %d changed by a batch that failed: %+v", ids[i], after[i])
				}
			}
			if errs, _ := s.CalcsByState(StateError); len(errs) != 0 {
				t.Errorf("state index has %d in error after the rollback", len(errs))
			}
			if n := countEvents(t, s, ActionCalcError); n != 0 {
				t.Errorf("%d calc_error events after the rollback, want 0", n)
			}
			// The same changes without the bad one go through.
			if _, err := s.ChangeCalcs([]CalcChange{{ID: ids[0], To: StateError, Note: "again"}}); err != nil {
				t.Fatalf("after the rollback: %v", err)
			}
		})
	}
}

func newCalcs(t *testing.T, s *Store, now time.Time, n int) []uint64 {
	t.Helper()
	u := newUser(t, s, 1<<30)
	var ids []uint64
	for i := range n {
		c, err := s.CreateCalculation(Calculation{UserID: u.ID, InputName: fmt.Sprintf("in%d.inp", i), Argv: []string{"x"}}, window, now)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	return ids
}

func calcsOf(t *testing.T, s *Store, ids []uint64) []Calculation {
	t.Helper()
	var out []Calculation
	for _, id := range ids {
		c, err := s.Calc(id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func countEvents(t *testing.T, s *Store, action string) int {
	t.Helper()
	evs, err := s.Events(time.Time{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Action == action {
			n++
		}
	}
	return n
}
