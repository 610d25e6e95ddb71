package sshc

import (
	"context"
	"errors"
	"net"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

func TestDeadLinkNoticedByKeepalive(t *testing.T) {
	b := sshBed(t)
	p := startProxy(t, net.JoinHostPort(b.Host, strconv.Itoa(b.Port)))
	c := newClient(t, b.pinned(t, p.port()), Options{KeepaliveInterval: time.Second, DialTimeout: 10 * time.Second})
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := c.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	file := remoteDir(t, c, "deadlink") + "/f" // an SFTP session on the link too
	if err := c.WriteFile(ctx, file, []byte("data"), 0); err != nil {
		t.Fatal(err)
	}

	p.freeze() // the link goes silent; nothing is closed
	_, err := c.Run(ctx, "echo hello")
	switch {
	case err == nil:
		t.Fatal("a command ran over a frozen link")
	case errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("the call hung until its deadline instead of failing when the keepalive noticed: %v", err)
	case plugins.KindOf(err) != plugins.KindTransient || !strings.Contains(err.Error(), "keepalive"):
		t.Fatalf("want a transient keepalive error, got %v", err)
	}
	if s := c.Stats(); s.KeepaliveFailures != 1 || s.Connected {
		t.Errorf("stats %+v: want one keepalive failure and no connection", s)
	}

	p.thaw()
	r, err := c.Run(ctx, "echo hello")
	if err != nil || string(r.Stdout) != "hello\n" {
		t.Fatalf("after the link came back: %q, %v", r.Stdout, err)
	}
	if _, err := c.List(ctx, "."); err != nil {
		t.Fatalf("SFTP after the link came back: %v", err)
	}
	if s := c.Stats(); s.Handshakes != 2 || !s.Connected {
		t.Errorf("stats %+v: want exactly one redial", s)
	}

	// The same for a transfer: the link dies with the SFTP session open.
	p.freeze()
	_, err = c.Get(ctx, path.Dir(file), path.Base(file), filepath.Join(t.TempDir(), "profile"), cluster.NoLimit)
	switch {
	case err == nil:
		t.Fatal("a download went through a frozen link")
	case errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("the transfer hung until its deadline: %v", err)
	case plugins.KindOf(err) != plugins.KindTransient || !strings.Contains(err.Error(), "keepalive"):
		t.Fatalf("want a transient keepalive error, got %v", err)
	}
	p.thaw()
	if _, err := c.Get(ctx, path.Dir(file), path.Base(file), filepath.Join(t.TempDir(), "profile"), cluster.NoLimit); err != nil {
		t.Fatalf("download after the link came back: %v", err)
	}
	if s := c.Stats(); s.Handshakes != 3 || s.KeepaliveFailures != 2 {
		t.Errorf("stats %+v: want 3 handshakes and 2 keepalive failures", s)
	}
}

func TestKeepaliveKeepsHealthyLink(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{KeepaliveInterval: 250 * time.Millisecond})
	ctx := ctxFor(t, time.Minute)
	// Long enough for many keepalives; every one must be answered.
	if r, err := c.Run(ctx, "sleep 2; echo done"); err != nil || string(r.Stdout) != "done\n" {
		t.Fatalf("%q, %v", r.Stdout, err)
	}
	if s := c.Stats(); s.KeepaliveFailures != 0 || s.Handshakes != 1 {
		t.Errorf("stats %+v: a healthy link was dropped", s)
	}
}

func TestSSHDStoppedAndStarted(t *testing.T) {
	// Our own sshd -D (not testbed.OwnSSHD): its Stop kills exactly the
	// connections this sshd accepted, found by parent pid.
	b := sshBed(t)
	sshd := startOwnSSHD(t, b)
	c := newClient(t, b.pinned(t, sshd.port), Options{BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := c.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}

	sshd.Stop()
	for i := range 3 {
		_, err := c.Run(ctx, "true")
		if err == nil || plugins.KindOf(err) != plugins.KindTransient {
			t.Fatalf("call %d with sshd down: %v, want a transient error", i, err)
		}
		time.Sleep(120 * time.Millisecond) // past the backoff: each call may dial
	}

	sshd.Start()
	var err error
	for i := 0; i < 50; i++ {
		if _, err = c.Run(ctx, "true"); err == nil {
			break
		}
		if plugins.KindOf(err) != plugins.KindTransient {
			t.Fatalf("after restart: %v", err)
		}
		time.Sleep(120 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no connection after sshd came back: %v", err)
	}
	s := c.Stats()
	if s.Handshakes < 2 || s.Handshakes > DefaultHandshakeLimit {
		t.Errorf("%d handshakes: want a redial, within the limit of %d per minute", s.Handshakes, DefaultHandshakeLimit)
	}
}
