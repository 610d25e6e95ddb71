// Reading calculations: by id, by the update or key that created them, by
// state, a user's newest first, and counting a user's that count for the quota.

package store

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// CalcCreatedBy returns the calculation created from Telegram update updateID
// (when not 0) or under idempotency key key (when not ""), or ErrNotFound.
func (s *Store) CalcCreatedBy(updateID int64, key string) (Calculation, error) {
	var c Calculation
	err := s.view(func(t *Tx) error {
		if updateID != 0 {
			if v := t.bucket(bCalcByUpdate).Get(i64(updateID)); v != nil {
				var err error
				c, err = t.calc(getU64(v))
				return err
			}
		}
		if key != "" {
			if v, ok := t.Value(calcKeyIndex(key)); ok {
				id, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return fmt.Errorf("index of key %q: %w", key, err)
				}
				c, err = t.calc(id)
				return err
			}
		}
		return fmt.Errorf("calculation of update %d, key %q: %w", updateID, key, ErrNotFound)
	})
	return c, err
}

func (t *Tx) calc(id uint64) (Calculation, error) {
	var c Calculation
	ok, err := getJSON(t.bucket(bCalcs), u64(id), &c)
	if err != nil {
		return c, fmt.Errorf("calc %d: %w", id, err)
	}
	if !ok {
		return c, fmt.Errorf("calc %d: %w", id, ErrNotFound)
	}
	return c, nil
}

// Calc returns the calculation with this id.
func (s *Store) Calc(id uint64) (Calculation, error) {
	var c Calculation
	err := s.view(func(t *Tx) error {
		var err error
		c, err = t.calc(id)
		return err
	})
	return c, err
}

// CalcsByState returns the calculations in any of the given states, ordered by
// id. It reads the state index, not every calculation.
func (s *Store) CalcsByState(states ...State) ([]Calculation, error) {
	var out []Calculation
	err := s.view(func(t *Tx) error {
		c := t.bucket(bCalcByState).Cursor()
		for _, st := range states {
			prefix := statePrefix(st)
			for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
				calc, err := t.calc(getU64(k[len(prefix):]))
				if err != nil {
					return err
				}
				out = append(out, calc)
			}
		}
		return nil
	})
	if len(states) > 1 {
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	}
	return out, err
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

// CalcsOfUser returns the user's calculations created after since, newest
// first, at most limit of them (limit <= 0: all). It reads the user index
// backwards and stops at since.
func (s *Store) CalcsOfUser(userID uint64, since time.Time, limit int) ([]Calculation, error) {
	var out []Calculation
	err := s.view(func(t *Tx) error {
		prefix := u64(userID)
		floor := cat(prefix, timeKey(since))
		c := t.bucket(bCalcByUser).Cursor()
		k, _ := c.Seek(u64(userID + 1))
		if k == nil || userID == math.MaxUint64 {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && hasPrefix(k, prefix); k, _ = c.Prev() {
			if string(k[:16]) <= string(floor) {
				break
			}
			calc, err := t.calc(getU64(k[16:]))
			if err != nil {
				return err
			}
			out = append(out, calc)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// CountCalcsSince counts the user's calculations created after since that
// count for the quota (CountsForQuota): what /status shows as used.
func (s *Store) CountCalcsSince(userID uint64, since time.Time) (int, error) {
	var n int
	err := s.view(func(t *Tx) error {
		n, _ = t.countSince(userID, since)
		return nil
	})
	return n, err
}

// countSince counts the user's calculations created after since: those that
// count for the quota, and all of them.
func (t *Tx) countSince(userID uint64, since time.Time) (counted, all int) {
	prefix := u64(userID)
	floor := cat(prefix, timeKey(since))
	c := t.bucket(bCalcByUser).Cursor()
	k, v := c.Seek(floor)
	for ; k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		if string(k[:16]) <= string(floor) {
			continue // created exactly at since: not after it
		}
		all++
		if len(v) == 1 && v[0] == 1 {
			counted++
		}
	}
	return counted, all
}
