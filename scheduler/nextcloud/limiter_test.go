package nextcloud

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when the limiter sleeps.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

func newTestLimiter(burst int, period time.Duration) (*limiter, *fakeClock) {
	clk := &fakeClock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	l := newLimiter(burst, period, clk.Now)
	l.sleep = clk.Sleep
	return l, clk
}

func TestLimiterNeverExceedsLimitPerWindow(t *testing.T) {
	l, clk := newTestLimiter(20, 10*time.Minute)
	start := clk.Now()
	var times []time.Time
	for i := range 100 {
		if err := l.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		times = append(times, clk.Now())
		if i%7 == 0 { // callers come irregularly
			_ = clk.Sleep(context.Background(), time.Duration(i)*time.Second)
		}
	}
	// No window of 10 minutes holds more than 20 creations, as Nextcloud counts.
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < 10*time.Minute; j++ {
			n++
		}
		if n > 20 {
			t.Fatalf("%d creations in the 10 minutes from %v", n, times[i].Sub(start))
		}
	}
	// And it does not wait more than it must: creation 21 comes exactly 10 min
	// after creation 1.
	if d := times[20].Sub(times[0]); d != 10*time.Minute {
		t.Errorf("creation 21 %v after creation 1, want 10m", d)
	}
}

func TestLimiterDeadline(t *testing.T) {
	l, clk := newTestLimiter(2, time.Minute)
	t0 := clk.Now()
	ctx, cancel := context.WithDeadline(context.Background(), t0.Add(10*time.Second))
	defer cancel()
	for range 2 {
		if err := l.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	err := l.wait(ctx)
	var le *LimitError
	if !errors.As(err, &le) || le.Wait != time.Minute {
		t.Fatalf("err = %v, want a LimitError of 1m", err)
	}
	if !clk.Now().Equal(t0) {
		t.Error("a refused wait slept")
	}
	// Refused waits reserve nothing: a caller with time goes after 1 min.
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := clk.Now().Sub(t0); d != time.Minute {
		t.Errorf("waited %v, want 1m", d)
	}
}

func TestLimiterPause(t *testing.T) {
	l, clk := newTestLimiter(20, 10*time.Minute)
	t0 := clk.Now()
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.pause(2 * time.Minute) // the server said 429, Retry-After: 120
	// After the pause creations resume one per 30 s, not as a burst.
	for i, want := range []time.Duration{2 * time.Minute, 2*time.Minute + 30*time.Second, 3 * time.Minute} {
		if err := l.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := clk.Now().Sub(t0); d != want {
			t.Errorf("creation %d after the pause at %v, want %v", i+1, d, want)
		}
	}
	// A shorter pause does not shorten a longer one.
	l.pause(time.Minute)
	l.pause(5 * time.Minute)
	l.pause(time.Second)
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := clk.Now().Sub(t0); d != 8*time.Minute {
		t.Errorf("after pauses of 1m, 5m, 1s: at %v, want 8m", d)
	}
}

func TestLimiterCancelGivesSlotBack(t *testing.T) {
	l, clk := newTestLimiter(1, time.Minute)
	t0 := clk.Now()
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := clk.Now().Sub(t0); d != time.Minute {
		t.Errorf("the cancelled reservation still counted: next at %v, want 1m", d)
	}
}
