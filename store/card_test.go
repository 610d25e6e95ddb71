package store

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestCards: a card is created by its first update, keeps what it was given,
// and cards_live lists exactly the cards marked Live; a failed update changes
// nothing.
func TestCards(t *testing.T) {
	s, _ := openTest(t)
	if _, err := s.Card(7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Card of a calculation without one = %v, want ErrNotFound", err)
	}
	live := func(want ...uint64) {
		t.Helper()
		cards, err := s.LiveCards()
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, c := range cards {
			got = append(got, c.CalcID)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("live cards %v, want %v", got, want)
		}
	}
	live()
	for _, id := range []uint64{9, 7, 300} {
		if _, err := s.UpdateCard(id, func(c *Card) error { c.ChatID, c.Live = int64(id)*10, true; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	live(7, 9, 300)
	c, err := s.UpdateCard(9, func(c *Card) error {
		if c.CalcID != 9 || c.ChatID != 90 || !c.Live {
			t.Errorf("update sees %+v", *c)
		}
		c.MessageID, c.Hash = 55, "h1"
		return nil
	})
	if err != nil || c != (Card{CalcID: 9, ChatID: 90, MessageID: 55, Hash: "h1", Live: true}) {
		t.Fatalf("UpdateCard = %+v, %v", c, err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateCard(9, func(c *Card) error { c.Hash, c.Live = "h2", false; return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed update = %v, want boom", err)
	}
	if got, err := s.Card(9); err != nil || got.Hash != "h1" || !got.Live {
		t.Fatalf("after a failed update: %+v, %v", got, err)
	}
	if _, err := s.UpdateCard(9, func(c *Card) error { c.Gone, c.Live = true, false; return nil }); err != nil {
		t.Fatal(err)
	}
	live(7, 300)
	if got, err := s.Card(9); err != nil || !got.Gone || got.MessageID != 55 {
		t.Fatalf("gone card: %+v, %v", got, err)
	}
}

// TestMigrateAddsCards: a store of the schema before the cards (no card
// buckets, calcs_active in format 2) migrates to one where cards can be kept
// and the active index carries the job's reason and node.
func TestMigrateAddsCards(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := newUser(t, s, 5)
	c, err := s.CreateCalculation(Calculation{UserID: u.ID, InputName: "a.inp", Folder: "f", Cluster: "loc"}, window, s.now())
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []State{StateStaged, StateSubmitted, StatePending} {
		if _, err := s.Transition(c.ID, to, "", func(_ *Tx, c *Calculation) error {
			c.JobID, c.Progress.Reason = "42", "Priority"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	before := LatestSchema() - 1
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bCards, bCardsLive} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		// calcs_active as format 2 wrote it: no reason, no node.
		b := tx.Bucket(bCalcActive)
		k, v := b.Cursor().First()
		old := append([]byte{2}, v[1:len(v)-len("Priority")-2]...)
		if err := b.Put(k, old); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(metaSchema, u64(uint64(before)))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{AllowOldSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ActiveJobs("loc"); err == nil {
		t.Fatal("a format-2 index entry decoded without error before the migration")
	}
	if from, to, err := s.Migrate(); err != nil || from != before || to != LatestSchema() {
		t.Fatalf("Migrate = %d, %d, %v", from, to, err)
	}
	jobs, err := s.ActiveJobs("loc")
	if err != nil || len(jobs) != 1 || jobs[0].Reason != "Priority" || jobs[0].JobID != "42" {
		t.Fatalf("ActiveJobs after migration = %+v, %v", jobs, err)
	}
	if _, err := s.UpdateCard(c.ID, func(c *Card) error { c.Live = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if cards, err := s.LiveCards(); err != nil || len(cards) != 1 {
		t.Fatalf("LiveCards = %+v, %v", cards, err)
	}
}
