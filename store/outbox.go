package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OutMsg is a message that must reach a chat once, even across crashes: the
// sender renders Kind with Params in the recipient's language and attaches Files.
type OutMsg struct {
	ChatID  int64             `json:"chat_id"`
	Kind    string            `json:"kind"` // e.g. "calc.finished"; the catalog key
	Params  map[string]string `json:"params,omitempty"`
	Files   []string          `json:"files,omitempty"` // local paths to send as documents
	Created time.Time         `json:"created"`
}

// OutItem is a queued message with its key.
type OutItem struct {
	Key    string    `json:"key"`
	Msg    OutMsg    `json:"msg"`
	Seq    uint64    `json:"seq"` // queue order
	Done   bool      `json:"done,omitempty"`
	DoneAt time.Time `json:"done_at,omitzero"`
}

// OutboxPut queues msg under key (e.g. "calc/42/finished"). A key seen before,
// sent or not, is ignored (inserted=false), so a step redone after a crash
// cannot queue the same message twice.
func (s *Store) OutboxPut(key string, msg OutMsg) (inserted bool, err error) {
	err = s.update(func(t *Tx) error {
		inserted, err = t.OutboxPut(key, msg)
		return err
	})
	return inserted, err
}

// OutboxPut queues msg in this transaction, so that for example "state →
// notified" and "queue the message" commit together. See Store.OutboxPut.
func (t *Tx) OutboxPut(key string, msg OutMsg) (bool, error) {
	if key == "" {
		return false, fmt.Errorf("outbox put: empty key: %w", ErrInvalid)
	}
	b := t.bucket(bOutbox)
	if b.Get([]byte(key)) != nil {
		return false, nil
	}
	seq, err := b.NextSequence()
	if err != nil {
		return false, fmt.Errorf("outbox put %s: %w", key, err)
	}
	if msg.Created.IsZero() {
		msg.Created = t.now
	}
	if err := putJSON(b, []byte(key), OutItem{Key: key, Msg: msg, Seq: seq}); err != nil {
		return false, fmt.Errorf("outbox put %s: %w", key, err)
	}
	if err := t.bucket(bOutboxPending).Put(u64(seq), []byte(key)); err != nil {
		return false, fmt.Errorf("outbox put %s: %w", key, err)
	}
	return true, nil
}

// OutboxPending returns the messages not yet marked sent, in the order they were queued.
func (s *Store) OutboxPending() ([]OutItem, error) {
	var out []OutItem
	err := s.view(func(t *Tx) error {
		var err error
		// outbox_pending: queue sequence → the record's key.
		out, err = pendingItems[OutItem](t.bucket(bOutbox), t.bucket(bOutboxPending), func(_, v []byte) []byte { return v })
		return err
	})
	return out, err
}

// OutboxDone marks the message sent. Again is a no-op; an unknown key is ErrNotFound.
func (s *Store) OutboxDone(key string) error {
	err := s.update(func(t *Tx) error {
		b := t.bucket(bOutbox)
		var it OutItem
		ok, err := getJSON(b, []byte(key), &it)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		if it.Done {
			return nil
		}
		it.Done, it.DoneAt = true, t.now
		if err := putJSON(b, []byte(key), it); err != nil {
			return err
		}
		return t.bucket(bOutboxPending).Delete(u64(it.Seq))
	})
	if err != nil {
		return fmt.Errorf("outbox done %s: %w", key, err)
	}
	return nil
}

// OutboxPrune forgets sent messages marked done before cutoff (their keys no
// longer block a new OutboxPut). Pending messages are never pruned.
func (s *Store) OutboxPrune(cutoff time.Time) (int, error) {
	n := 0
	err := s.update(func(t *Tx) error {
		var err error
		n, err = pruneDone(t.bucket(bOutbox), cutoff, func(it *OutItem) (bool, time.Time) { return it.Done, it.DoneAt })
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("outbox prune: %w", err)
	}
	return n, nil
}

// pruneDone deletes the JSON records of b that are done before cutoff; records
// not done stay whatever their age. It returns how many it deleted.
func pruneDone[T any](b *bolt.Bucket, cutoff time.Time, doneAt func(*T) (bool, time.Time)) (int, error) {
	var drop [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		var it T
		if _, err := getJSON(b, k, &it); err != nil {
			return err
		}
		if done, at := doneAt(&it); done && at.Before(cutoff) {
			drop = append(drop, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(drop), nil
}

// pendingItems reads, in the pending index's order, the JSON records of data that
// the index names; key gives a record's key from an index entry. Index entries
// whose record is gone are skipped.
func pendingItems[T any](data, pending *bolt.Bucket, key func(k, v []byte) []byte) ([]T, error) {
	var out []T
	err := pending.ForEach(func(k, v []byte) error {
		var it T
		ok, err := getJSON(data, key(k, v), &it)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, it)
		}
		return nil
	})
	return out, err
}
