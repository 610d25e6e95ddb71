package sshc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"hpcbot/plugins"
)

func TestPruneBefore(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ts := []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second)}
	got := pruneBefore(ts, t0.Add(time.Second))
	if len(got) != 2 || !got[0].Equal(t0.Add(time.Second)) {
		t.Errorf("pruneBefore = %v", got)
	}
	if got := pruneBefore(nil, t0); len(got) != 0 {
		t.Errorf("pruneBefore(nil) = %v", got)
	}
}

func TestCappedBuffer(t *testing.T) {
	b := &cappedBuffer{max: 10}
	for _, s := range []string{"hello", " wor", "ld!", "more"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v: must accept everything so the command is not blocked", s, n, err)
		}
	}
	if b.buf.String() != "hello worl" || b.dropped != 6 {
		t.Errorf("kept %q, dropped %d; want \"hello worl\", 6", b.buf.String(), b.dropped)
	}
}

func TestAbs(t *testing.T) {
	s := &sftpSession{home: "/home/u"}
	for in, want := range map[string]string{
		"~":         "/home/u",
		"~/":        "/home/u",
		"~/a/b":     "/home/u/a/b",
		"~other/x":  "~other/x",
		"rel/x":     "rel/x",
		"/abs/x":    "/abs/x",
		"a/~/b":     "a/~/b",
		"~/../etc/": "/home/etc",
	} {
		if got := s.abs(in); got != want {
			t.Errorf("abs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPinnedKeyMismatchMessage(t *testing.T) {
	want, _ := randomKey(t)
	got, _ := randomKey(t)
	h, err := newHostKeyChecker(plugins.Connection{Host: "h", User: "u", HostKey: authorizedLine(want) + " comment"})
	if err != nil {
		t.Fatal(err)
	}
	cb, algos, err := h.callback("h:22")
	if err != nil {
		t.Fatal(err)
	}
	if len(algos) != 1 || algos[0] != ssh.KeyAlgoED25519 {
		t.Errorf("host key algorithms %v, want only the pinned key's", algos)
	}
	if err := cb("h:22", nil, want); err != nil {
		t.Errorf("the pinned key was refused: %v", err)
	}
	err = cb("h:22", nil, got)
	var hk *hostKeyError
	if !errors.As(err, &hk) {
		t.Fatalf("want a hostKeyError, got %v", err)
	}
	for _, s := range []string{ssh.FingerprintSHA256(got), ssh.FingerprintSHA256(want), "set host_key = ", authorizedLine(got)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message lacks %q: %v", s, err)
		}
	}
}

func TestAlgorithmsFor(t *testing.T) {
	ed, _ := randomKey(t)
	rsaPub := fakeKey(ssh.KeyAlgoRSA)
	got := algorithmsFor([]ssh.PublicKey{ed, rsaPub, ed})
	want := []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("algorithmsFor = %v, want %v", got, want)
	}
	if algorithmsFor(nil) != nil {
		t.Error("no known key must leave the library's defaults")
	}
}

type fakeKey string

func (k fakeKey) Type() string                        { return string(k) }
func (k fakeKey) Marshal() []byte                     { return []byte(k) }
func (k fakeKey) Verify([]byte, *ssh.Signature) error { return errors.New("fake") }

func TestParallel(t *testing.T) {
	var ran atomic.Int32
	err := parallel(context.Background(), 3, 10, func(ctx context.Context, i int) error {
		ran.Add(1)
		return nil
	})
	if err != nil || ran.Load() != 10 {
		t.Fatalf("parallel ran %d, err %v", ran.Load(), err)
	}
	boom := errors.New("boom")
	ran.Store(0)
	err = parallel(context.Background(), 1, 10, func(ctx context.Context, i int) error {
		ran.Add(1)
		if i == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || ran.Load() != 3 {
		t.Fatalf("after an error: ran %d, err %v; want the error and no new calls", ran.Load(), err)
	}
	if err := parallel(context.Background(), 4, 0, nil); err != nil {
		t.Fatalf("no items: %v", err)
	}
}

// packetCounter counts packets however the writes split them.
func TestPacketCounter(t *testing.T) {
	var n atomic.Int64
	var buf bytes.Buffer
	w := &packetCounter{WriteCloser: nopCloser{&buf}, n: &n}
	stream := []byte{0, 0, 0, 2, 'a', 'b', 0, 0, 0, 1, 'c', 0, 0, 1, 0}
	stream = append(stream, make([]byte, 256)...)
	stream = append(stream, 0, 0, 0, 3, 'x', 'y', 'z')
	for _, split := range [][]int{{len(stream)}, {1, 3, 2, 1, 4, 100, 200}, {6, 5, 4}} {
		n.Store(0)
		buf.Reset()
		rest := stream
		for _, k := range split {
			k = min(k, len(rest))
			if _, err := w.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		if len(rest) > 0 {
			if _, err := w.Write(rest); err != nil {
				t.Fatal(err)
			}
		}
		if n.Load() != 4 || !bytes.Equal(buf.Bytes(), stream) {
			t.Errorf("splits %v: %d packets, want 4", split, n.Load())
		}
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
