package sshc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
)

func TestRun(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	tests := []struct {
		name           string
		cmd            string
		stdout, stderr string
		exit           int
	}{
		{"success", "echo hello", "hello\n", "", 0},
		{"non-zero exit is not an error", "echo out; echo err >&2; exit 7", "out\n", "err\n", 7},
		{"sh -c semantics", "a=1; for i in 2 3; do a=$a$i; done; echo $a | tr 1 x", "x23\n", "", 0},
		{"runs in the login folder", `test "$PWD" = "$HOME" && echo home`, "home\n", "", 0},
		{"stdin is empty", "cat; echo done", "done\n", "", 0},
		{"killed by a signal", "kill -TERM $$", "", "", 128 + 15},
		{"command not found", "no-such-command-hpcbot", "", "", 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.Run(ctxFor(t, time.Minute), tt.cmd)
			if err != nil {
				t.Fatalf("Run(%q): %v", tt.cmd, err)
			}
			if r.ExitCode != tt.exit || string(r.Stdout) != tt.stdout {
				t.Errorf("Run(%q) = exit %d stdout %q, want exit %d stdout %q", tt.cmd, r.ExitCode, r.Stdout, tt.exit, tt.stdout)
			}
			if tt.stderr != "" && string(r.Stderr) != tt.stderr {
				t.Errorf("stderr %q, want %q", r.Stderr, tt.stderr)
			}
		})
	}
	if s := c.Stats(); s.Handshakes != 1 || s.ChannelsOpen != 0 {
		t.Errorf("stats %+v: want one connection and every channel closed", s)
	}
}

func TestRunOutputCap(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{MaxOutput: 1000})
	r, err := c.Run(ctxFor(t, time.Minute), "head -c 5000 /dev/zero; echo tail >&2; exit 3")
	if err == nil || plugins.KindOf(err) != plugins.KindPermanent || !strings.Contains(err.Error(), "4000 bytes of stdout") {
		t.Fatalf("want a permanent error about 4000 dropped bytes, got %v", err)
	}
	if len(r.Stdout) != 1000 || string(r.Stderr) != "tail\n" || r.ExitCode != 3 {
		t.Errorf("result: %d bytes of stdout, stderr %q, exit %d; want the first 1000 bytes, \"tail\\n\", 3", len(r.Stdout), r.Stderr, r.ExitCode)
	}
}

func TestRunAbandonedAtDeadline(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	ctx := ctxFor(t, time.Minute)
	marker := fmt.Sprint(time.Now().UnixNano())   // a sleep no other run started
	if _, err := c.Run(ctx, "true"); err != nil { // connected before the clock starts
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := c.Run(short, "sleep "+marker+"; echo never") // a shell with a child
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || plugins.KindOf(err) != plugins.KindTransient {
		t.Fatalf("want a transient deadline error, got %v", err)
	}
	// The remote sleep was killed (SIGKILL through the channel): wait for it to go.
	for i := 0; ; i++ {
		r, err := c.Run(ctx, "pgrep -u \"$(id -u)\" -f '[s]leep "+marker+"' || true") // [s]: not this shell
		if err != nil {
			t.Fatal(err)
		}
		if len(strings.TrimSpace(string(r.Stdout))) == 0 {
			break
		}
		if i == 100 {
			t.Fatalf("the abandoned command still runs: pids %s", r.Stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := c.Stats(); s.Handshakes != 1 || s.ChannelsOpen != 0 {
		t.Errorf("stats %+v: abandoning a command must close its channel and keep the connection", s)
	}
}
