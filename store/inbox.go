package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// InboxKeep is how long handled update ids are kept at least, so that an
// update Telegram delivers again is recognised (Telegram keeps unconfirmed
// updates for 24 hours; ids restart at random after a week of silence).
const InboxKeep = 7 * 24 * time.Hour

// InboxItem is one Telegram update as received.
type InboxItem struct {
	UpdateID int64     `json:"update_id"`
	Raw      []byte    `json:"raw,omitempty"` // the update's JSON; dropped once handled
	Received time.Time `json:"received"`
	Done     bool      `json:"done,omitempty"`
	DoneAt   time.Time `json:"done_at,omitzero"`
}

// InboxPut stores an update before the poll offset moves past it. It returns
// inserted=false, and stores nothing, for an update id seen before, handled
// or not. Either way it records the time of the last update seen (see Offset).
func (s *Store) InboxPut(updateID int64, raw []byte) (inserted bool, err error) {
	err = s.update(func(t *Tx) error {
		inserted, err = t.inboxPut(updateID, raw)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("inbox put update %d: %w", updateID, err)
	}
	return inserted, nil
}

// RawUpdate is a Telegram update as it came from getUpdates.
type RawUpdate struct {
	ID  int64
	Raw []byte
}

// InboxPutBatch stores a batch of updates like InboxPut and sets the poll
// offset, all in one transaction (one disk sync per getUpdates answer).
// inserted[i] tells whether updates[i] was new.
func (s *Store) InboxPutBatch(updates []RawUpdate, offset int64) (inserted []bool, err error) {
	inserted = make([]bool, len(updates))
	err = s.update(func(t *Tx) error {
		for i, u := range updates {
			if inserted[i], err = t.inboxPut(u.ID, u.Raw); err != nil {
				return fmt.Errorf("update %d: %w", u.ID, err)
			}
		}
		return t.bucket(bMeta).Put(metaTgOffset, i64(offset))
	})
	if err != nil {
		return nil, fmt.Errorf("inbox put batch: %w", err)
	}
	return inserted, nil
}

func (t *Tx) inboxPut(updateID int64, raw []byte) (bool, error) {
	key := i64(updateID)
	inbox := t.bucket(bInbox)
	if err := setMetaTime(t.tx, metaTgLastUpdateAt, t.now); err != nil {
		return false, err
	}
	if inbox.Get(key) != nil {
		return false, nil
	}
	if err := putJSON(inbox, key, InboxItem{UpdateID: updateID, Raw: raw, Received: t.now}); err != nil {
		return false, err
	}
	return true, t.bucket(bInboxPending).Put(key, nil)
}

// InboxPending returns the updates not yet marked done, ordered by update id.
func (s *Store) InboxPending() ([]InboxItem, error) {
	var out []InboxItem
	err := s.view(func(t *Tx) error {
		var err error
		// inbox_pending: update id → nothing; the id is the record's key.
		out, err = pendingItems[InboxItem](t.bucket(bInbox), t.bucket(bInboxPending), func(k, _ []byte) []byte { return k })
		return err
	})
	return out, err
}

// InboxDone marks an update handled (dropping its raw JSON, keeping its id).
// Marking it again is a no-op; an unknown id is ErrNotFound.
func (s *Store) InboxDone(updateID int64) error {
	err := s.update(func(t *Tx) error { return t.inboxDone(updateID) })
	if err != nil {
		return fmt.Errorf("inbox done update %d: %w", updateID, err)
	}
	return nil
}

// InboxDoneAll marks several updates handled like InboxDone, in one
// transaction (one disk sync): all of them, or none with an error.
func (s *Store) InboxDoneAll(updateIDs []int64) error {
	if len(updateIDs) == 0 {
		return nil
	}
	err := s.update(func(t *Tx) error {
		for _, id := range updateIDs {
			if err := t.inboxDone(id); err != nil {
				return fmt.Errorf("update %d: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("inbox done: %w", err)
	}
	return nil
}

func (t *Tx) inboxDone(updateID int64) error {
	key := i64(updateID)
	inbox := t.bucket(bInbox)
	var it InboxItem
	ok, err := getJSON(inbox, key, &it)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	if it.Done {
		return nil
	}
	it.Done, it.DoneAt, it.Raw = true, t.now, nil
	if err := putJSON(inbox, key, it); err != nil {
		return err
	}
	return t.bucket(bInboxPending).Delete(key)
}

// InboxPrune forgets handled updates done before cutoff, but never those
// handled within InboxKeep of now (the cutoff is moved back if needed).
// Pending updates are never pruned. It returns how many were removed.
func (s *Store) InboxPrune(cutoff time.Time) (int, error) {
	n := 0
	err := s.update(func(t *Tx) error {
		if limit := t.now.Add(-InboxKeep); cutoff.After(limit) {
			cutoff = limit
		}
		var err error
		n, err = pruneDone(t.bucket(bInbox), cutoff, func(it *InboxItem) (bool, time.Time) { return it.Done, it.DoneAt })
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("inbox prune: %w", err)
	}
	return n, nil
}

// Offset returns the stored getUpdates offset (0 when none) and the time the
// last new update was stored by InboxPut (zero when none).
func (s *Store) Offset() (offset int64, lastUpdate time.Time, err error) {
	err = s.view(func(t *Tx) error {
		if v := t.bucket(bMeta).Get(metaTgOffset); len(v) == 8 {
			offset = getI64(v)
		}
		lastUpdate = metaTime(t.tx, metaTgLastUpdateAt)
		return nil
	})
	return offset, lastUpdate, err
}

// SetOffset stores the getUpdates offset. Call it only after every update
// below the offset is in the inbox.
func (s *Store) SetOffset(offset int64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bMeta).Put(metaTgOffset, i64(offset))
	})
}
