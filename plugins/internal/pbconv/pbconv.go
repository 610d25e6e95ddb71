// Package pbconv holds the small conversions both sides of the plugin
// protocol use: the host (package plugins) and the plugin's side (package kit).
package pbconv

import "math"

// ClampInt32 is n as an int32, clamped to its range.
func ClampInt32(n int) int32 {
	return int32(max(math.MinInt32, min(n, math.MaxInt32)))
}

// NilIfEmpty is m, or nil when it is empty (a map that crossed the wire is
// never nil, and an empty one means none).
func NilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
