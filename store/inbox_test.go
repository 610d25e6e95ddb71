package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestInbox(t *testing.T) {
	s, clk := openTest(t)
	t0 := clk.t
	// Out of order arrival; pending comes back ordered by id.
	for _, id := range []int64{12, 10, 11} {
		ok, err := s.InboxPut(id, []byte(fmt.Sprintf(`{"update_id":%d}`, id)))
		if err != nil || !ok {
			t.Fatalf("InboxPut(%d) = %v, %v", id, ok, err)
		}
	}
	if ok, err := s.InboxPut(11, []byte(`{"other":1}`)); err != nil || ok {
		t.Fatalf("second InboxPut(11) = %v, %v; want false", ok, err)
	}
	pend := pendingIDs(t, s)
	if pend != "[10 11 12]" {
		t.Fatalf("pending = %s", pend)
	}
	items, _ := s.InboxPending()
	if string(items[1].Raw) != `{"update_id":11}` {
		t.Fatalf("raw of 11 = %s (the duplicate must not overwrite it)", items[1].Raw)
	}
	if err := s.InboxDone(11); err != nil {
		t.Fatal(err)
	}
	if err := s.InboxDone(11); err != nil {
		t.Fatalf("second InboxDone: %v", err)
	}
	if err := s.InboxDone(99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("InboxDone(unknown) = %v", err)
	}
	if pend := pendingIDs(t, s); pend != "[10 12]" {
		t.Fatalf("pending after done = %s", pend)
	}
	// A handled id delivered again is still recognised.
	if ok, _ := s.InboxPut(11, nil); ok {
		t.Fatal("a handled update was inserted again")
	}
	// Prune keeps handled ids for InboxKeep whatever the cutoff says.
	clk.t = t0.Add(InboxKeep - time.Minute)
	if n, err := s.InboxPrune(clk.t); err != nil || n != 0 {
		t.Fatalf("early prune = %d, %v; want 0", n, err)
	}
	clk.t = t0.Add(InboxKeep + time.Minute)
	if n, err := s.InboxPrune(clk.t); err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want 1", n, err)
	}
	if pend := pendingIDs(t, s); pend != "[10 12]" {
		t.Fatalf("prune touched pending updates: %s", pend)
	}
	if ok, _ := s.InboxPut(11, nil); !ok {
		t.Fatal("a pruned id is not accepted again")
	}
}

func TestInboxDoneAll(t *testing.T) {
	s, _ := openTest(t)
	for id := int64(1); id <= 5; id++ {
		if _, err := s.InboxPut(id, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InboxDoneAll([]int64{2, 4}); err != nil {
		t.Fatal(err)
	}
	if pend := pendingIDs(t, s); pend != "[1 3 5]" {
		t.Fatalf("pending = %s", pend)
	}
	// An unknown id: nothing is marked.
	if err := s.InboxDoneAll([]int64{1, 99}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("InboxDoneAll with an unknown id = %v", err)
	}
	if pend := pendingIDs(t, s); pend != "[1 3 5]" {
		t.Fatalf("pending after the failed call = %s", pend)
	}
	if err := s.InboxDoneAll(nil); err != nil {
		t.Fatal(err)
	}
}

func pendingIDs(t *testing.T, s *Store) string {
	t.Helper()
	items, err := s.InboxPending()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, it := range items {
		ids = append(ids, it.UpdateID)
	}
	return fmt.Sprint(ids)
}

func TestInboxBatchAndOffset(t *testing.T) {
	s, clk := openTest(t)
	if off, last, err := s.Offset(); err != nil || off != 0 || !last.IsZero() {
		t.Fatalf("initial Offset = %d, %v, %v", off, last, err)
	}
	if _, err := s.InboxPut(5, nil); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(time.Hour)
	ins, err := s.InboxPutBatch([]RawUpdate{{5, nil}, {6, []byte("{}")}, {7, nil}}, 8)
	if err != nil || fmt.Sprint(ins) != "[false true true]" {
		t.Fatalf("InboxPutBatch = %v, %v", ins, err)
	}
	off, last, err := s.Offset()
	if err != nil || off != 8 || !last.Equal(clk.t) {
		t.Fatalf("Offset = %d, %v, %v; want 8, %v", off, last, err, clk.t)
	}
	if err := s.SetOffset(-1); err != nil {
		t.Fatal(err)
	}
	if off, _, _ := s.Offset(); off != -1 {
		t.Fatalf("Offset after SetOffset(-1) = %d", off)
	}
	if pend := pendingIDs(t, s); pend != "[5 6 7]" {
		t.Fatalf("pending = %s", pend)
	}
}

func TestOutbox(t *testing.T) {
	s, clk := openTest(t)
	for _, key := range []string{"calc/2/finished", "calc/1/started", "calc/1/finished"} {
		ok, err := s.OutboxPut(key, OutMsg{ChatID: 7, Kind: key, Params: map[string]string{"k": key}})
		if err != nil || !ok {
			t.Fatalf("OutboxPut(%s) = %v, %v", key, ok, err)
		}
	}
	if ok, err := s.OutboxPut("calc/1/started", OutMsg{ChatID: 8}); err != nil || ok {
		t.Fatalf("duplicate OutboxPut = %v, %v", ok, err)
	}
	if _, err := s.OutboxPut("", OutMsg{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty key: %v", err)
	}
	keys := func() string {
		items, err := s.OutboxPending()
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, it := range items {
			ks = append(ks, it.Key)
			if it.Msg.ChatID != 7 || it.Msg.Created.IsZero() {
				t.Errorf("item %+v", it)
			}
		}
		return fmt.Sprint(ks)
	}
	if got := keys(); got != "[calc/2/finished calc/1/started calc/1/finished]" {
		t.Fatalf("pending in queue order = %s", got)
	}
	if err := s.OutboxDone("calc/1/started"); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxDone("calc/1/started"); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxDone("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OutboxDone(unknown) = %v", err)
	}
	if got := keys(); got != "[calc/2/finished calc/1/finished]" {
		t.Fatalf("pending after done = %s", got)
	}
	if ok, _ := s.OutboxPut("calc/1/started", OutMsg{ChatID: 7}); ok {
		t.Fatal("a sent message was queued again")
	}
	clk.t = clk.t.Add(time.Hour)
	if n, err := s.OutboxPrune(clk.t); err != nil || n != 1 {
		t.Fatalf("OutboxPrune = %d, %v", n, err)
	}
	if got := keys(); got != "[calc/2/finished calc/1/finished]" {
		t.Fatalf("prune touched pending: %s", got)
	}
}
