package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	const lo, hi = 15 * time.Second, 10 * time.Minute
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{0, lo, 18 * time.Second},
		{1, lo, 18 * time.Second},
		{2, 24 * time.Second, 36 * time.Second},
		{3, 48 * time.Second, 72 * time.Second},
		{6, 384 * time.Second, hi},
		{7, 480 * time.Second, hi},
		{100, 480 * time.Second, hi},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := Delay(lo, hi, tt.n)
			if d < tt.min || d > tt.max {
				t.Fatalf("Delay(n=%d) = %v, want within [%v, %v]", tt.n, d, tt.min, tt.max)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Delay(n=%d) took only %d values in 200 draws: no jitter", tt.n, len(seen))
		}
	}
	if d := Delay(time.Second, time.Millisecond, 5); d != time.Second {
		t.Errorf("Delay with hi < lo = %v, want lo", d)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v, want nil", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0) = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep after cancel = %v, want context.Canceled", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(0) after cancel = %v, want context.Canceled", err)
	}
}
