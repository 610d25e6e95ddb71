// Package backoff is the one way hpcbot waits before trying a failed thing
// again: the wait doubles from a floor up to a cap, with jitter so that many
// clients failing together (calculations on one cluster, bots restarted at
// once) do not retry in step; and Sleep waits unless a context ends first.
//
// Exponential backoff with jitter: https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay is the wait before retry number n (n ≥ 1, the count of consecutive
// failures so far): lo doubled n-1 times, at most hi, spread by ±20 % at
// random and kept within [lo, hi]. A hi below lo is taken as lo.
func Delay(lo, hi time.Duration, n int) time.Duration {
	hi = max(hi, lo)
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(max(d, lo), hi)
}

// Sleep waits d and returns nil, or returns ctx's error as soon as ctx ends.
// A d of zero or less does not wait.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
