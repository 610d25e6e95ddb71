package nextcloud

import (
	"context"
	"fmt"
	"sync"
	"time"
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

// limiter is a token bucket: burst tokens, one more every period/burst, so that no
// more than burst creations fall in any period (Nextcloud counts 20 per 10 min per
// user). Callers are served in arrival order: a caller that must wait reserves its
// token first, so later callers queue behind it. A 429 from the server pauses the
// bucket and empties it.
type limiter struct {
	mu       sync.Mutex
	burst    float64
	interval time.Duration // time to earn one token
	tokens   float64       // may go negative: tokens reserved by waiting callers
	last     time.Time     // when tokens was last brought up to date
	paused   time.Time     // no token is handed out before this
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
}

func newLimiter(burst int, period time.Duration, now func() time.Time) *limiter {
	return &limiter{
		burst:    float64(burst),
		interval: period / time.Duration(burst),
		tokens:   float64(burst),
		last:     now(),
		now:      now,
		sleep:    sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
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

// refill brings tokens up to date; the caller holds mu.
func (l *limiter) refill(now time.Time) {
	if now.After(l.last) {
		l.tokens += float64(now.Sub(l.last)) / float64(l.interval)
		if l.tokens > l.burst {
			l.tokens = l.burst
		}
		l.last = now
	}
}

// wait takes one token, sleeping until one is free. When that moment lies past
// ctx's deadline it returns a *LimitError at once without taking a token, so a
// caller with a short deadline learns when to come back instead of blocking.
func (l *limiter) wait(ctx context.Context) error {
	l.mu.Lock()
	now := l.now()
	l.refill(now)
	ready := now
	if l.tokens < 1 {
		ready = now.Add(time.Duration((1 - l.tokens) * float64(l.interval)))
	}
	if l.paused.After(ready) {
		ready = l.paused
	}
	d := ready.Sub(now)
	if dl, ok := ctx.Deadline(); ok && dl.Before(ready) {
		l.mu.Unlock()
		return &LimitError{Wait: d}
	}
	l.tokens--
	l.mu.Unlock()
	for d > 0 {
		if err := l.sleep(ctx, d); err != nil {
			l.giveBack()
			return err
		}
		// A 429 may have paused the bucket while we slept.
		l.mu.Lock()
		now, paused := l.now(), l.paused
		l.mu.Unlock()
		d = paused.Sub(now)
		if dl, ok := ctx.Deadline(); ok && d > 0 && dl.Before(paused) {
			l.giveBack()
			return &LimitError{Wait: d}
		}
	}
	return nil
}

func (l *limiter) giveBack() {
	l.mu.Lock()
	l.tokens++
	l.mu.Unlock()
}

// pause stops handing out tokens for d and empties the bucket: the server said
// 429, so it counts more creations than we did (another client of the account).
func (l *limiter) pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.refill(now)
	if until := now.Add(d); until.After(l.paused) {
		l.paused = until
	}
	if l.tokens > 0 {
		l.tokens = 0
	}
}
