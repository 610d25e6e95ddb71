package scheduler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// waitHeld waits until calculation id waits for an admin after attempts
// failed deliveries, with its notice recorded.
func (b *bed) waitHeld(id uint64, attempts int) store.Calculation {
	b.t.Helper()
	var c store.Calculation
	until(b.t, func() string {
		return "held delivery: " + history(c) + " " + c.Error
	}, func() bool {
		c, _ = b.st.Calc(id)
		return c.State == store.StateDeliveryFailed && c.Progress.DeliveryHeld && c.Attempts == attempts && c.WaitNotified
	})
	return c
}

// TestWrongCloudPasswordHoldsThenRestartDelivers: with a wrong Nextcloud
// password a job that succeeded is not an error: it waits in delivery_failed,
// held (no retry, since every failed login counts towards Nextcloud's
// brute-force protection); the user and the log chat are told once, with how
// the job ended. /redeliver tries once more. A restart with the right password
// delivers it once: one share, one finished notice, no resumed notice.
func TestWrongCloudPasswordHoldsThenRestartDelivers(t *testing.T) {
	b := newBed(t, withCloud("per_calculation"))
	b.cfg.Storage.Password = plugins.Secret("wrong-password")
	s := b.start()
	c := b.submit("ok.sh", "echo r > r.txt", "")
	d := b.waitHeld(c.ID, 1)
	if !d.NextTry.IsZero() || d.Error != "" || !strings.Contains(d.History[len(d.History)-1].Note, "401") {
		t.Fatalf("held calc: next try %v, error %q, history %s", d.NextTry, d.Error, history(d))
	}
	fails := b.nc.AuthFailures()
	if fails == 0 {
		t.Fatal("the fake Nextcloud saw no failed login")
	}
	df := b.notes.of(c.ID, EventDeliveryFailed)
	if len(df) != 1 || df[0].Code != CodeCloudRefused || df[0].Outcome != store.StateSucceeded || !strings.Contains(df[0].Reason, "401") {
		t.Fatalf("delivery failed notices %+v", df)
	}
	if errs := b.notes.of(c.ID, EventError); len(errs) != 0 {
		t.Fatalf("a failed delivery was reported as an error: %+v", errs)
	}

	// /redeliver: one more try, held again, not told again.
	if err := s.Redeliver(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	b.waitHeld(c.ID, 2)
	if got := b.nc.AuthFailures(); got <= fails {
		t.Fatalf("redeliver made no request: %d failed logins before, %d after", fails, got)
	}
	if df := b.notes.of(c.ID, EventDeliveryFailed); len(df) != 1 {
		t.Fatalf("told again: %+v", df)
	}
	if err := s.Redeliver(context.Background(), 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Redeliver(999) = %v, want ErrNotFound", err)
	}
	other := b.submit("other.sh", "echo o > o.txt", "")
	b.waitHeld(other.ID, 1)

	// The admin fixes the password and restarts.
	b.stop()
	b.cfg.Storage.Password = plugins.Secret(b.nc.Password)
	b.start()
	for _, id := range []uint64{c.ID, other.ID} {
		d = b.waitState(id, store.StateNotified, store.StateError)
		if d.State != store.StateNotified || d.ShareLink == "" || d.Progress.DeliveryHeld {
			t.Fatalf("after the restart: %s %q %+v", history(d), d.Error, d.Progress)
		}
		fin := b.notes.of(id, EventFinished)
		if len(fin) != 1 || fin[0].Link != d.ShareLink || fin[0].Outcome != store.StateSucceeded {
			t.Fatalf("finished notices %+v", fin)
		}
		if res := b.notes.of(id, EventResumed); len(res) != 0 {
			t.Fatalf("resumed notices after a failed delivery: %+v", res)
		}
	}
	if shares := b.nc.Shares(); len(shares) != 2 {
		t.Fatalf("shares %v, want one per calculation", shares)
	}
	if err := b.s.Redeliver(context.Background(), c.ID); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Redeliver of a notified calc = %v, want ErrNotHeld", err)
	}
}

// TestRedeliverAfterPasswordReset: the admin resets the account's password to
// the one the bot has, then /redeliver delivers at once, without a restart.
func TestRedeliverAfterPasswordReset(t *testing.T) {
	b := newBed(t, withCloud("per_calculation"))
	right := b.nc.Password
	b.nc.Password = "changed-on-the-server"
	s := b.start()
	c := b.submit("ok.sh", "echo r > r.txt", "")
	b.waitHeld(c.ID, 1)
	b.nc.SetPassword(right)
	if err := s.Redeliver(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	d := b.waitState(c.ID, store.StateNotified, store.StateError)
	if d.State != store.StateNotified || d.ShareLink == "" {
		t.Fatalf("%s %q", history(d), d.Error)
	}
	if fin := b.notes.of(c.ID, EventFinished); len(fin) != 1 || fin[0].Link != d.ShareLink {
		t.Fatalf("finished notices %+v", fin)
	}
}

// TestFallbackToTelegramFiles: with storage.fallback_after set, results the
// cloud has not taken for that long (here: a refused password, held) are sent
// as Telegram files instead; nothing reaches the cloud.
func TestFallbackToTelegramFiles(t *testing.T) {
	b := newBed(t, withCloud("per_calculation"))
	b.cfg.Storage.Password = plugins.Secret("wrong-password")
	b.cfg.Storage.FallbackAfter = plugins.Duration(time.Millisecond)
	b.start()
	c := b.submit("ok.sh", "echo r > r.txt", "")
	d := b.waitState(c.ID, store.StateNotified, store.StateError)
	if d.State != store.StateNotified || d.ShareLink != "" || !strings.Contains(history(d), string(store.StateDeliveryFailed)) {
		t.Fatalf("%s %q link %q", history(d), d.Error, d.ShareLink)
	}
	fin := b.notes.of(c.ID, EventFinished)
	if len(fin) != 1 || len(fin[0].Files) != 1 || fin[0].Link != "" {
		t.Fatalf("finished notices %+v", fin)
	}
	if df := b.notes.of(c.ID, EventDeliveryFailed); len(df) != 1 || df[0].Code != CodeCloudRefused {
		t.Fatalf("delivery failed notices %+v", df)
	}
	if sh := b.nc.Shares(); len(sh) != 0 {
		t.Fatalf("shares %v", sh)
	}
}

// TestNoFallbackByDefault: without fallback_after the held results wait for
// an admin and are never sent as files.
func TestNoFallbackByDefault(t *testing.T) {
	b := newBed(t, withCloud("per_calculation"))
	b.cfg.Storage.Password = plugins.Secret("wrong-password")
	b.start()
	c := b.submit("ok.sh", "echo r > r.txt", "")
	d := b.waitHeld(c.ID, 1)
	if !d.NextTry.IsZero() || len(b.notes.of(c.ID, EventFinished)) != 0 {
		t.Fatalf("held calc: next try %v, finished %+v", d.NextTry, b.notes.of(c.ID, EventFinished))
	}
}
