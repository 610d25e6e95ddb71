package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestGroups(t *testing.T) {
	s, clk := openTest(t)
	if _, err := s.Group(-5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Group of an unknown chat = %v", err)
	}
	a, err := s.PutGroup(Group{ChatID: -100200, Title: "Chem", State: GroupAllowed, By: 1001})
	if err != nil || !a.At.Equal(clk.t) {
		t.Fatalf("PutGroup = %+v, %v", a, err)
	}
	if _, err := s.PutGroup(Group{ChatID: -7, Title: "Spam", State: GroupRefused, By: 66}); err != nil {
		t.Fatal(err)
	}
	if g, err := s.Group(-100200); err != nil || g != a {
		t.Fatalf("Group = %+v, %v; want %+v", g, err, a)
	}
	gs, err := s.Groups()
	if err != nil || len(gs) != 2 || gs[0].ChatID != -100200 || gs[1].ChatID != -7 || gs[1].State != GroupRefused {
		t.Fatalf("Groups = %+v, %v; want both, by chat id", gs, err)
	}
	// A refused group allowed later by an admin: the record is replaced.
	if _, err := s.PutGroup(Group{ChatID: -7, Title: "Spam", State: GroupAllowed, By: 1001}); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Group(-7); g.State != GroupAllowed || g.By != 1001 {
		t.Fatalf("after allowing: %+v", g)
	}
	// Bad records are refused, nothing written.
	for _, bad := range []Group{{ChatID: 42, State: GroupAllowed}, {ChatID: 0, State: GroupAllowed}, {ChatID: -9, State: "maybe"}} {
		if _, err := s.PutGroup(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutGroup(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	// A group that became a supergroup keeps its record under the new id.
	m, err := s.MoveGroup(-100200, -1001234)
	if err != nil || m.ChatID != -1001234 || m.From != -100200 || m.State != GroupAllowed || m.Title != "Chem" {
		t.Fatalf("MoveGroup = %+v, %v", m, err)
	}
	if _, err := s.Group(-100200); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the old id still has a record: %v", err)
	}
	if _, err := s.MoveGroup(-31, -1009); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MoveGroup of an unknown group = %v", err)
	}
	if _, err := s.MoveGroup(-7, 5); !errors.Is(err, ErrInvalid) {
		t.Fatalf("MoveGroup to a user id = %v", err)
	}
	// Removal.
	if g, err := s.DeleteGroup(-1001234, 1001); err != nil || g.ChatID != -1001234 {
		t.Fatalf("DeleteGroup = %+v, %v", g, err)
	}
	if _, err := s.DeleteGroup(-1001234, 1001); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteGroup = %v", err)
	}
	if gs, _ := s.Groups(); len(gs) != 1 || gs[0].ChatID != -7 {
		t.Fatalf("Groups after delete = %+v", gs)
	}
	// Every change is in the audit log, with who did it.
	evs, _ := s.Events(time.Time{}, 0)
	var actions []string
	for i := len(evs) - 1; i >= 0; i-- {
		actions = append(actions, evs[i].Action+" "+evs[i].Subject)
	}
	want := []string{"group.allow group/-100200", "group.refuse group/-7", "group.allow group/-7",
		"group.move group/-1001234", "group.remove group/-1001234"}
	if len(actions) != len(want) {
		t.Fatalf("events %q, want %q", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Fatalf("events %q, want %q", actions, want)
		}
	}
	if evs[0].Actor != 1001 {
		t.Errorf("remove event actor %d, want 1001", evs[0].Actor)
	}
}

// TestMigrateAddsGroups: a schema-2 file (before groups) migrates to one
// where groups can be stored, keeping what it had.
func TestMigrateAddsGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := newUser(t, s, 5)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bGroups); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(metaSchema, u64(2))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("Open of a schema-2 store = %v, want ErrSchemaTooOld", err)
	}
	s, err = Open(path, Options{AllowOldSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if from, to, err := s.Migrate(); err != nil || from != 2 || to != LatestSchema() || to < 3 {
		t.Fatalf("Migrate = %d, %d, %v", from, to, err)
	}
	if _, err := s.PutGroup(Group{ChatID: -1, State: GroupAllowed}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.User(u.ID); err != nil || got.ID != u.ID {
		t.Fatalf("user after migration: %+v, %v", got, err)
	}
}
