package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ActiveJob is what a cluster's poll needs of a calculation whose job the
// cluster has (State.Active: submitted, pending, running). ActiveJobs reads it
// from the calcs_active index, without decoding the whole record: a poll
// cycle reads the full Calculation only for the jobs whose answer changes
// something.
type ActiveJob struct {
	ID           uint64
	State        State
	JobID        string
	Folder       string
	Launch       string
	RawState     string
	WaitingSince time.Time // zero: not waiting
	WaitNotified bool
	Cancel       Cancel // Progress.Cancel
	Accepted     bool   // Progress.Accepted
	Reason       string // Progress.Reason
	Node         string // Progress.Node
}

// activeFormat is the first byte of every calcs_active value. A change of the
// encoding needs a new format number and a migration step that rebuilds the
// index (the step of schema 2 wrote format 1, with the Delivery map of
// strings; the step of schema 4 wrote format 2; the cards step writes format 3,
// which adds the job's reason and node).
const activeFormat = 3

// activeKey is the calcs_active key of a calculation: clusterPrefix, the
// state, 0x00, the calc id.
func activeKey(cluster string, s State, id uint64) []byte {
	return cat(clusterPrefix(cluster), []byte(s), []byte{0}, u64(id))
}

// clusterPrefix is the label's length (uvarint) followed by the label, so that
// no label's keys start with another label's prefix.
func clusterPrefix(cluster string) []byte {
	b := binary.AppendUvarint(make([]byte, 0, len(cluster)+2), uint64(len(cluster)))
	return append(b, cluster...)
}

// activeValue encodes what ActiveJob holds besides ID and State (both in the
// key): format byte, length-prefixed strings, a flags byte, the waiting time
// if flagged, the cancel state, the reason and the node.
func activeValue(c Calculation) []byte {
	b := make([]byte, 0, 64)
	b = append(b, activeFormat)
	b = appendStr(b, c.JobID)
	b = appendStr(b, c.Folder)
	b = appendStr(b, c.Launch)
	b = appendStr(b, c.RawState)
	var flags byte
	if !c.WaitingSince.IsZero() {
		flags |= 1
	}
	if c.WaitNotified {
		flags |= 2
	}
	if c.Progress.Accepted {
		flags |= 4
	}
	b = append(b, flags)
	if flags&1 != 0 {
		b = append(b, timeKey(c.WaitingSince)...)
	}
	b = appendStr(b, string(c.Progress.Cancel))
	b = appendStr(b, c.Progress.Reason)
	return appendStr(b, c.Progress.Node)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// activeReader decodes an activeValue; the first problem sticks in err.
type activeReader struct {
	b   []byte
	err error
	// seen interns the short strings most jobs share (launch, raw state,
	// cancel state), so a read of 10,000 jobs does not allocate
	// them 10,000 times. nil: no interning.
	seen map[string]string
}

func (r *activeReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or corrupt %s", what)
	}
}

func (r *activeReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *activeReader) str(what string) string {
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// shared is str for a value many jobs share: interned when r.seen is set.
func (r *activeReader) shared(what string) string {
	if r.seen == nil {
		return r.str(what)
	}
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	raw := r.b[:n]
	r.b = r.b[n:]
	if s, ok := r.seen[string(raw)]; ok { // no allocation for the lookup
		return s
	}
	if len(r.seen) >= 256 {
		return string(raw)
	}
	s := string(raw)
	r.seen[s] = s
	return s
}

func (r *activeReader) byte1(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *activeReader) fixed8(what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < 8 {
		r.fail(what)
		return nil
	}
	v := r.b[:8]
	r.b = r.b[8:]
	return v
}

// decodeActive parses a calcs_active entry; seen (may be nil) interns the
// strings jobs share, across the calls of one read.
func decodeActive(k, v []byte, prefixLen int, seen map[string]string) (ActiveJob, error) {
	var j ActiveJob
	rest := k[prefixLen:]
	if len(rest) < 10 || rest[len(rest)-9] != 0 {
		return j, fmt.Errorf("active index key %x: malformed", k)
	}
	j.ID = getU64(rest[len(rest)-8:])
	j.State = State(rest[:len(rest)-9])
	r := activeReader{b: v, seen: seen}
	if f := r.byte1("format"); r.err == nil && f != activeFormat {
		return j, fmt.Errorf("active index entry of calc %d: format %d, want %d", j.ID, f, activeFormat)
	}
	j.JobID = r.str("job id")
	j.Folder = r.str("folder")
	j.Launch = r.shared("launch")
	j.RawState = r.shared("raw state")
	flags := r.byte1("flags")
	if flags&1 != 0 {
		if t := r.fixed8("waiting since"); t != nil {
			j.WaitingSince = time.Unix(0, getI64(t))
		}
	}
	j.WaitNotified = flags&2 != 0
	j.Accepted = flags&4 != 0
	j.Cancel = Cancel(r.shared("cancel"))
	j.Reason = r.shared("reason")
	j.Node = r.shared("node")
	if r.err == nil && len(r.b) != 0 {
		r.fail("entry (trailing bytes)")
	}
	if r.err != nil {
		return ActiveJob{}, fmt.Errorf("active index entry of calc %d: %w", j.ID, r.err)
	}
	return j, nil
}

// putActive brings calc's calcs_active entry from old (nil for a new
// calculation) to c, inside the transaction that writes c.
func (t *Tx) putActive(c Calculation, old *Calculation) error {
	b := t.bucket(bCalcActive)
	if old != nil && old.State.Active() && (old.State != c.State || old.Cluster != c.Cluster || !c.State.Active()) {
		if err := b.Delete(activeKey(old.Cluster, old.State, old.ID)); err != nil {
			return err
		}
	}
	if !c.State.Active() {
		return nil
	}
	return b.Put(activeKey(c.Cluster, c.State, c.ID), activeValue(c))
}

// ActiveJobs returns the calculations of cluster whose job the cluster has
// (submitted, pending, running), ordered by id, from the calcs_active index:
// one read of that cluster's entries and no JSON decoding.
func (s *Store) ActiveJobs(cluster string) ([]ActiveJob, error) {
	var out []ActiveJob
	err := s.view(func(t *Tx) error {
		prefix := clusterPrefix(cluster)
		seen := map[string]string{}
		c := t.bucket(bCalcActive).Cursor()
		n := 0 // count first: one allocation instead of a growing slice
		for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		if n == 0 {
			return nil
		}
		out = make([]ActiveJob, 0, n)
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			j, err := decodeActive(k, v, len(prefix), seen)
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read active jobs of cluster %s: %w", cluster, err)
	}
	slices.SortFunc(out, func(a, b ActiveJob) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// buildActiveIndex (re)creates calcs_active from the records of every active
// calculation, found through the state index. It is the migration step of
// schema 2.
func buildActiveIndex(tx *bolt.Tx) error {
	if tx.Bucket(bCalcActive) != nil {
		if err := tx.DeleteBucket(bCalcActive); err != nil {
			return fmt.Errorf("drop bucket %s: %w", bCalcActive, err)
		}
	}
	if _, err := tx.CreateBucket(bCalcActive); err != nil {
		return fmt.Errorf("create bucket %s: %w", bCalcActive, err)
	}
	t := &Tx{tx: tx}
	for _, st := range []State{StateSubmitted, StatePending, StateRunning} {
		prefix := statePrefix(st)
		c := t.bucket(bCalcByState).Cursor()
		for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
			calc, err := t.calc(getU64(k[len(prefix):]))
			if err != nil {
				return fmt.Errorf("index active calculations: %w", err)
			}
			if err := t.putActive(calc, nil); err != nil {
				return fmt.Errorf("index active calculation %d: %w", calc.ID, err)
			}
		}
	}
	return nil
}
