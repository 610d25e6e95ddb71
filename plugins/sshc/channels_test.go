package sshc

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// runConcurrently runs n commands at once and checks each one's output.
func runConcurrently(t *testing.T, c *Client, n int, cmd func(i int) string, want func(i int) string) {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Run(ctx, cmd(i))
			switch {
			case err != nil:
				errs[i] = err
			case string(r.Stdout) != want(i) || r.ExitCode != 0:
				errs[i] = fmt.Errorf("stdout %q exit %d, want %q exit 0", r.Stdout, r.ExitCode, want(i))
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("command %d: %v", i, err)
		}
	}
}

func TestChannelCap(t *testing.T) {
	b := sshBed(t)
	// A login node stricter than OpenSSH's default of 10 sessions per connection.
	sshd := startOwnSSHD(t, b, "MaxSessions 4")
	cmd := func(i int) string { return fmt.Sprintf("sleep 0.5; echo %d", i) }
	want := func(i int) string { return fmt.Sprintf("%d\n", i) }

	t.Run("cap above MaxSessions: callers wait", func(t *testing.T) {
		c := newClient(t, b.pinned(t, sshd.port), Options{MaxChannels: 8, RefusedWait: 20 * time.Millisecond})
		runConcurrently(t, c, 20, cmd, want)
		s := c.Stats()
		if s.ChannelsHighWater > 8 || s.ChannelsOpen != 0 {
			t.Errorf("stats %+v: want at most 8 channels at once and none left open", s)
		}
		if s.ChannelsRefused == 0 {
			t.Errorf("stats %+v: the server never refused a channel; the test did not exercise the wait", s)
		}
		if s.Handshakes != 1 {
			t.Errorf("%d handshakes: a refused channel must not cost the connection", s.Handshakes)
		}
	})
	t.Run("cap below MaxSessions", func(t *testing.T) {
		c := newClient(t, b.pinned(t, sshd.port), Options{MaxChannels: 3})
		runConcurrently(t, c, 20, cmd, want)
		if s := c.Stats(); s.ChannelsHighWater > 3 || s.Handshakes != 1 {
			t.Errorf("stats %+v: want at most 3 channels at once on one connection", s)
		}
	})
	t.Run("transfers share the cap", func(t *testing.T) {
		c := newClient(t, b.pinned(t, sshd.port), Options{MaxChannels: 4})
		dir := "sshc-cap-" + randomSuffix()
		ctx := ctxFor(t, time.Minute)
		t.Cleanup(func() { _ = c.RemoveAll(ctxFor(t, time.Minute), dir) })
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 20 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				errs <- c.WriteFile(ctx, fmt.Sprintf("%s/f%d", dir, i), []byte(strings.Repeat("x", i)), 0o600)
			}()
			go func() {
				defer wg.Done()
				_, err := c.Run(ctx, "sleep 0.2")
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		files, err := c.List(ctx, dir)
		if err != nil || len(files) != 20 {
			t.Fatalf("List: %d files, %v; want 20", len(files), err)
		}
		if s := c.Stats(); s.ChannelsHighWater > 4 || s.Handshakes != 1 {
			t.Errorf("stats %+v: want at most 4 channels (SFTP included) on one connection", s)
		}
	})
}

func TestChannelCapDefault(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	runConcurrently(t, c, 20,
		func(i int) string { return fmt.Sprintf("sleep 0.2; echo %d", i) },
		func(i int) string { return fmt.Sprintf("%d\n", i) })
	// A refusal or two can still happen: sshd counts a session until it has
	// processed our close, so a new open can race a closing one. They are waited out.
	if s := c.Stats(); s.ChannelsHighWater > DefaultMaxChannels || s.Handshakes != 1 {
		t.Errorf("stats %+v: want at most %d channels on one connection", s, DefaultMaxChannels)
	}
}
