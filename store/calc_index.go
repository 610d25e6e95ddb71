// The keys of the calculations' indexes: by state, by user and creation time
// (with the quota flag as value), and by idempotency key.

package store

import (
	"math"
	"time"
)

// Index keys.

func stateKey(s State, id uint64) []byte { return cat([]byte(s), []byte{0}, u64(id)) }

func statePrefix(s State) []byte { return cat([]byte(s), []byte{0}) }

func userCalcKey(userID uint64, created time.Time, id uint64) []byte {
	return cat(u64(userID), timeKey(created), u64(id))
}

// timeKey encodes t so that byte order equals time order (clamped to the
// range UnixNano can represent).
func timeKey(t time.Time) []byte {
	switch {
	case t.Before(minNanoTime):
		return i64(math.MinInt64)
	case t.After(maxNanoTime):
		return i64(math.MaxInt64)
	}
	return i64(t.UnixNano())
}

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

func quotaFlag(c Calculation) []byte {
	if c.CountsForQuota() {
		return []byte{1}
	}
	return []byte{0}
}

// calcKeyIndex is the kv key that indexes the calculation created under an
// idempotency key (Calculation.Key).
func calcKeyIndex(key string) string { return "calc/key/" + key }
