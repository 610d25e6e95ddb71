package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Keys of the meta bucket.
var (
	metaSchema         = []byte("schema_version")
	metaTgOffset       = []byte("telegram_offset")
	metaTgLastUpdateAt = []byte("telegram_last_update_at")
)

// migrations is the append-only list of schema steps: step i brings the schema
// from version i to version i+1 and runs in one transaction together with the
// version bump. Never edit or reorder a released step; append a new one.
var migrations = []func(*bolt.Tx) error{
	// 1: every bucket of the first release.
	func(tx *bolt.Tx) error {
		for _, name := range [][]byte{
			bOrgs, bUsers, bAccounts, bAccByUsername, bAccByUser,
			bCalcs, bCalcByState, bCalcByUser, bCalcByUpdate,
			bEvents, bInbox, bInboxPending, bOutbox, bOutboxPending, bKV,
		} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	// 2: calcs_active, the index of the calculations whose job a cluster has,
	// by cluster (what a poll cycle reads instead of whole records), built
	// from the records of the active calculations.
	buildActiveIndex,
	// 3: groups, the groups admins allowed (where /access registers users) and
	// those the bot refused.
	func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bGroups); err != nil {
			return fmt.Errorf("create bucket %s: %w", bGroups, err)
		}
		return nil
	},
	// 4 (typed progress): the scheduler's bookkeeping of each calculation,
	// a map of strings under "delivery" until schema 3, becomes the typed
	// Progress under "progress"; calcs_active is rebuilt in format 2.
	convertProgress,
	// 5: calcs_ended, the index of the calculations in a final state (notified,
	// error) by the time they entered it, with what housekeeping still has to
	// do for each (what it reads instead of whole records), built from the
	// records of the final calculations.
	buildEndedIndex,
	// 6 (cards): the live calculation cards (cards, cards_live), and
	// calcs_active rebuilt in format 3, which carries the job's reason and node.
	addCards,
}

// LatestSchema is the schema version this binary writes.
func LatestSchema() int { return len(migrations) }

func readSchema(tx *bolt.Tx) int {
	b := tx.Bucket(bMeta)
	if b == nil {
		return 0
	}
	v := b.Get(metaSchema)
	if len(v) != 8 {
		return 0
	}
	return int(getU64(v))
}

// SchemaVersion is the schema version stored in the file (0 for a new file).
func (s *Store) SchemaVersion() (int, error) {
	var v int
	err := s.db.View(func(tx *bolt.Tx) error {
		v = readSchema(tx)
		return nil
	})
	return v, err
}

// Migrate brings the schema up to LatestSchema, one step per transaction, and
// reports the versions before and after. Running it again is a no-op
// (from == to). It never drops data.
func (s *Store) Migrate() (from, to int, err error) {
	from, err = s.SchemaVersion()
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	if from > len(migrations) {
		return from, from, s.tooNew(from)
	}
	to = from
	for v := from; v < len(migrations); v++ {
		err := s.db.Update(func(tx *bolt.Tx) error {
			if cur := readSchema(tx); cur != v {
				return fmt.Errorf("schema changed under us: expected version %d, found %d", v, cur)
			}
			meta, err := tx.CreateBucketIfNotExists(bMeta)
			if err != nil {
				return fmt.Errorf("create meta bucket: %w", err)
			}
			if err := migrations[v](tx); err != nil {
				return err
			}
			return meta.Put(metaSchema, u64(uint64(v+1)))
		})
		if err != nil {
			return from, to, fmt.Errorf("migrate store %s to schema %d: %w", s.path, v+1, err)
		}
		to = v + 1
	}
	return from, to, nil
}

func (s *Store) tooNew(v int) error {
	return fmt.Errorf("store %s has schema version %d but this hpcbot knows only up to %d: upgrade hpcbot (or restore a backup): %w",
		s.path, v, len(migrations), ErrSchemaTooNew)
}

// checkSchema runs at Open.
func (s *Store) checkSchema(opts Options) error {
	var v int
	empty := true
	err := s.db.View(func(tx *bolt.Tx) error {
		v = readSchema(tx)
		return tx.ForEach(func([]byte, *bolt.Bucket) error {
			empty = false
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read schema of store %s: %w", s.path, err)
	}
	switch {
	case v > len(migrations):
		return s.tooNew(v)
	case v == len(migrations):
		return nil
	case opts.AllowOldSchema:
		return nil // the caller migrates (or only backs up)
	case empty && !opts.ReadOnly:
		// A new file holds nothing to lose: create the current schema at once so
		// that `hpcbot run` works on a fresh installation.
		if _, _, err := s.Migrate(); err != nil {
			return err
		}
		return nil
	default:
		return fmt.Errorf("store %s has schema version %d, this hpcbot needs %d: run `hpcbot migrate`: %w",
			s.path, v, len(migrations), ErrSchemaTooOld)
	}
}

// metaTime and setMetaTime keep a time in the meta bucket.
func metaTime(tx *bolt.Tx, key []byte) time.Time {
	v := tx.Bucket(bMeta).Get(key)
	if len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(0, getI64(v))
}

func setMetaTime(tx *bolt.Tx, key []byte, t time.Time) error {
	return tx.Bucket(bMeta).Put(key, timeKey(t))
}
