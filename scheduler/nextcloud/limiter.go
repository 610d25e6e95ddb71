package nextcloud

import (
	"context"
	"fmt"
	"sync"
	"time"

	"hpcbot/internal/backoff"
)

// LimitError says a share creation was not attempted because the Client's limiter
// (or a 429 the server sent earlier) would make it wait past the caller's deadline.
// It is wrapped in a transient *plugins.Error; RetryAfter returns Wait.
type LimitError struct {
	Wait time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("share rate limit: the next public link can be created in %v", e.Wait.Round(time.Second))
}

// limiter keeps share creations within Nextcloud's own rule: at most limit
// creations in any window of period (the server counts the attempts of the last
// period seconds, a sliding window; a token bucket would let through a burst plus
// its refill, almost twice the limit in one window). It remembers when the last
// limit creations started; the next may start period after the oldest of them.
// Callers are served in arrival order: one that must wait reserves its slot first,
// so later callers queue behind it. A 429 from the server pauses the limiter.
type limiter struct {
	mu     sync.Mutex
	limit  int
	period time.Duration
	starts []time.Time // start times of the latest creations (reservations included), ascending
	paused time.Time   // nothing starts before this
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
}

func newLimiter(limit int, period time.Duration, now func() time.Time) *limiter {
	return &limiter{limit: limit, period: period, now: now, sleep: backoff.Sleep}
}

// next returns when the next creation may start; the caller holds mu.
func (l *limiter) next(now time.Time) time.Time {
	ready := now
	if n := len(l.starts); n >= l.limit {
		if t := l.starts[n-l.limit].Add(l.period); t.After(ready) {
			ready = t
		}
	}
	if l.paused.After(ready) {
		ready = l.paused
	}
	return ready
}

// wait reserves the next slot and sleeps until it comes. When that moment lies
// past ctx's deadline it returns a *LimitError at once and reserves nothing, so a
// caller with a short deadline learns when to come back instead of blocking.
func (l *limiter) wait(ctx context.Context) error {
	l.mu.Lock()
	now := l.now()
	ready := l.next(now)
	if dl, ok := ctx.Deadline(); ok && dl.Before(ready) {
		l.mu.Unlock()
		return &LimitError{Wait: ready.Sub(now)}
	}
	// Creations that left the window can no longer hold anyone back.
	k := 0
	for k < len(l.starts) && !l.starts[k].Add(l.period).After(now) {
		k++
	}
	l.starts = append(l.starts[k:], ready)
	l.mu.Unlock()
	d := ready.Sub(now)
	for d > 0 {
		if err := l.sleep(ctx, d); err != nil {
			l.cancel(ready)
			return err
		}
		// A 429 may have paused the limiter while we slept.
		l.mu.Lock()
		now, paused := l.now(), l.paused
		l.mu.Unlock()
		d = paused.Sub(now)
		if dl, ok := ctx.Deadline(); ok && d > 0 && dl.Before(paused) {
			l.cancel(ready)
			return &LimitError{Wait: d}
		}
	}
	return nil
}

// cancel drops a reservation that will not be used.
func (l *limiter) cancel(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.starts) - 1; i >= 0; i-- {
		if l.starts[i].Equal(t) {
			l.starts = append(l.starts[:i], l.starts[i+1:]...)
			return
		}
	}
}

// pause stops creations for d: the server said 429, so it counts a full window
// (another client of the account creates shares too). After the pause, creations
// resume one per period/limit, as if the window had filled evenly up to its end.
func (l *limiter) pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	until := l.now().Add(d)
	if !until.After(l.paused) {
		return
	}
	l.paused = until
	step := l.period / time.Duration(l.limit)
	l.starts = l.starts[:0]
	for i := range l.limit {
		l.starts = append(l.starts, until.Add(-l.period+time.Duration(i)*step))
	}
}
