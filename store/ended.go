package store

import (
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// EndedCalc is what housekeeping needs of a calculation in a final state
// (notified, error). EndedCalcs and EndedDue read it from the calcs_ended
// index without decoding the record; housekeeping reads the whole record only
// of the calculations it acts on.
type EndedCalc struct {
	ID      uint64
	At      time.Time // when it entered its final state: its last history entry
	Cluster string
	// CleanupDue: notified, it was submitted, and its remote folder is not
	// removed yet (Progress.Cleaned is false).
	CleanupDue bool
	// NoticeDue: in error, and its error notice is not queued yet
	// (Progress.ErrorNotified is false).
	NoticeDue bool
}

// endedFormat is the first byte of every calcs_ended value. A change of the
// encoding needs a new format number and a migration step that rebuilds the
// index (the step of schema 5 writes format 1).
const endedFormat = 1

// The flags byte of a calcs_ended value.
const (
	endedCleanupDue = 1 << iota
	endedNoticeDue
)

// endedAt is when c entered its final state: its last history entry (a
// same-state update adds none). A record without history never ages: it gets
// the largest time a key can hold.
func endedAt(c Calculation) time.Time {
	if len(c.History) == 0 {
		return maxNanoTime
	}
	return c.History[len(c.History)-1].At
}

// endedKey is the calcs_ended key of c: its end time (timeKey) ‖ calc id.
func endedKey(c Calculation) []byte { return cat(timeKey(endedAt(c)), u64(c.ID)) }

// endedValue encodes what EndedCalc holds besides ID and At (both in the
// key): format byte, flags byte, the cluster label (length-prefixed).
func endedValue(c Calculation) []byte {
	var flags byte
	if c.State == StateNotified && !c.Progress.Cleaned && c.Submitted() {
		flags |= endedCleanupDue
	}
	if c.State == StateError && !c.Progress.ErrorNotified {
		flags |= endedNoticeDue
	}
	return appendStr([]byte{endedFormat, flags}, c.Cluster)
}

// decodeEnded parses a calcs_ended entry; seen (may be nil) interns the
// cluster labels, across the calls of one read.
func decodeEnded(k, v []byte, seen map[string]string) (EndedCalc, error) {
	var e EndedCalc
	if len(k) != 16 {
		return e, fmt.Errorf("ended index key %x: malformed", k)
	}
	e.At, e.ID = time.Unix(0, getI64(k[:8])), getU64(k[8:])
	r := activeReader{b: v, seen: seen}
	if f := r.byte1("format"); r.err == nil && f != endedFormat {
		return e, fmt.Errorf("ended index entry of calc %d: format %d, want %d", e.ID, f, endedFormat)
	}
	flags := r.byte1("flags")
	e.CleanupDue, e.NoticeDue = flags&endedCleanupDue != 0, flags&endedNoticeDue != 0
	e.Cluster = r.shared("cluster")
	if r.err == nil && len(r.b) != 0 {
		r.fail("entry (trailing bytes)")
	}
	if r.err != nil {
		return EndedCalc{}, fmt.Errorf("ended index entry of calc %d: %w", e.ID, r.err)
	}
	return e, nil
}

// putEnded brings calc's calcs_ended entry from old (nil for a new
// calculation) to c, inside the transaction that writes c. A same-state
// update that changes nothing the entry holds writes nothing.
func (t *Tx) putEnded(c Calculation, old *Calculation) error {
	b := t.bucket(bCalcEnded)
	var oldKey []byte
	if old != nil && old.State.Final() {
		oldKey = endedKey(*old)
	}
	var key, val []byte
	if c.State.Final() {
		key, val = endedKey(c), endedValue(c)
	}
	if oldKey != nil && string(oldKey) != string(key) {
		if err := b.Delete(oldKey); err != nil {
			return err
		}
	}
	if key == nil || string(oldKey) == string(key) && string(b.Get(key)) == string(val) {
		return nil
	}
	return b.Put(key, val)
}

// EndedCalcs returns the calculations in a final state that entered it at or
// before until and whose entry sorts after after's, in (end time, id) order:
// at most limit of them (limit <= 0: all). after is the last entry of the
// previous page; the zero EndedCalc starts at the oldest. It reads only the
// index.
func (s *Store) EndedCalcs(after EndedCalc, until time.Time, limit int) ([]EndedCalc, error) {
	var out []EndedCalc
	err := s.view(func(t *Tx) error {
		seen := map[string]string{}
		c := t.bucket(bCalcEnded).Cursor()
		ceiling := cat(timeKey(until), u64(math.MaxUint64))
		var k, v []byte
		if after.ID == 0 && after.At.IsZero() {
			k, v = c.First()
		} else {
			from := cat(timeKey(after.At), u64(after.ID))
			k, v = c.Seek(from)
			if k != nil && string(k) == string(from) {
				k, v = c.Next()
			}
		}
		for ; k != nil && string(k) <= string(ceiling); k, v = c.Next() {
			e, err := decodeEnded(k, v, seen)
			if err != nil {
				return err
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read ended calculations: %w", err)
	}
	return out, nil
}

// EndedDue returns, in (end time, id) order, the calculations in a final state
// with something left to do: every one whose error notice is due, and those
// whose remote cleanup is due on the clusters for which cleanup returns true
// (nil: none). It reads the whole index but decodes only the entries with a
// flag set, and reads no record.
func (s *Store) EndedDue(cleanup func(cluster string) bool) ([]EndedCalc, error) {
	var out []EndedCalc
	err := s.view(func(t *Tx) error {
		seen := map[string]string{}
		c := t.bucket(bCalcEnded).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) >= 2 && v[1] == 0 {
				continue // nothing due: not decoded
			}
			e, err := decodeEnded(k, v, seen)
			if err != nil {
				return err
			}
			if e.NoticeDue || e.CleanupDue && cleanup != nil && cleanup(e.Cluster) {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read ended calculations: %w", err)
	}
	return out, nil
}

// buildEndedIndex (re)creates calcs_ended from the records of every
// calculation in a final state, found through the state index. It is the
// migration step of schema 5.
func buildEndedIndex(tx *bolt.Tx) error {
	if tx.Bucket(bCalcEnded) != nil {
		if err := tx.DeleteBucket(bCalcEnded); err != nil {
			return fmt.Errorf("drop bucket %s: %w", bCalcEnded, err)
		}
	}
	if _, err := tx.CreateBucket(bCalcEnded); err != nil {
		return fmt.Errorf("create bucket %s: %w", bCalcEnded, err)
	}
	t := &Tx{tx: tx}
	for _, st := range []State{StateNotified, StateError} {
		prefix := statePrefix(st)
		c := t.bucket(bCalcByState).Cursor()
		for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
			calc, err := t.calc(getU64(k[len(prefix):]))
			if err != nil {
				return fmt.Errorf("index ended calculations: %w", err)
			}
			if err := t.putEnded(calc, nil); err != nil {
				return fmt.Errorf("index ended calculation %d: %w", calc.ID, err)
			}
		}
	}
	return nil
}
