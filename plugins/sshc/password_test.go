package sshc

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"hpcbot/plugins"
)

// passwordServer is an in-process SSH server (the test bed's sshd takes keys
// only) that accepts one password through "password" and/or
// "keyboard-interactive" and counts every password it was sent.
type passwordServer struct {
	addr     string
	hostKey  ssh.PublicKey
	received atomic.Int32
}

func startPasswordServer(t *testing.T, password string, withPassword, withKeyboard bool) *passwordServer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s := &passwordServer{hostKey: signer.PublicKey()}
	cfg := &ssh.ServerConfig{}
	if withPassword {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			s.received.Add(1)
			if string(pw) == password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	if withKeyboard {
		cfg.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			answers, err := ask("", "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			s.received.Add(1)
			if len(answers) == 1 && answers[0] == password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	cfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s.addr = l.Addr().String()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveExitZero(c, cfg)
		}
	}()
	return s
}

// serveExitZero answers every exec request with exit status 0.
func serveExitZero(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			for r := range creqs {
				_ = r.Reply(r.Type == "exec", nil)
				if r.Type == "exec" {
					_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
					_ = ch.Close()
				}
			}
		}()
	}
}

func TestPasswordAuth(t *testing.T) {
	tests := []struct {
		name               string
		withPassword, kbd  bool
		password           string
		wantErr            bool
		wantSentPerAttempt int32
	}{
		{"password method", true, false, "right", false, 1},
		{"keyboard-interactive (PAM)", false, true, "right", false, 1},
		{"both offered, right password", true, true, "right", false, 1},
		{"both offered, wrong password: sent once per handshake", true, true, "hunter2-wrong", true, 1},
		{"keyboard-interactive only, wrong password", false, true, "hunter2-wrong", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startPasswordServer(t, "right", tt.withPassword, tt.kbd)
			host, port, _ := net.SplitHostPort(srv.addr)
			cfg := plugins.Connection{Host: host, Port: mustAtoi(t, port), User: "u", Password: plugins.Secret(tt.password), HostKey: authorizedLine(srv.hostKey)}
			c := newClient(t, cfg, Options{BackoffMin: time.Millisecond, BackoffMax: time.Millisecond})
			ctx := ctxFor(t, time.Minute)
			var err error
			for range 5 {
				_, err = c.Run(ctx, "true")
				time.Sleep(2 * time.Millisecond)
			}
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			s := c.Stats()
			if !tt.wantErr {
				if s.Handshakes != 1 || srv.received.Load() != 1 {
					t.Errorf("stats %+v, %d passwords sent; want one handshake, one password", s, srv.received.Load())
				}
				return
			}
			if plugins.KindOf(err) != plugins.KindAuth {
				t.Errorf("kind %v, want auth: %v", plugins.KindOf(err), err)
			}
			if s.Handshakes != 2 || srv.received.Load() != 2*tt.wantSentPerAttempt {
				t.Errorf("stats %+v, %d passwords sent; want 2 handshakes, %d passwords", s, srv.received.Load(), 2*tt.wantSentPerAttempt)
			}
			if strings.Contains(err.Error(), tt.password) {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNoSFTPSubsystem(t *testing.T) {
	// The in-process server runs commands but refuses subsystems, like a login
	// node with SFTP disabled.
	srv := startPasswordServer(t, "right", true, false)
	host, port, _ := net.SplitHostPort(srv.addr)
	cfg := plugins.Connection{Host: host, Port: mustAtoi(t, port), User: "u", Password: "right", HostKey: authorizedLine(srv.hostKey)}
	c := newClient(t, cfg, Options{})
	ctx := ctxFor(t, time.Minute)
	_, err := c.List(ctx, ".")
	if err == nil || plugins.KindOf(err) != plugins.KindPermanent || !strings.Contains(err.Error(), "sftp subsystem") {
		t.Fatalf("want a permanent error naming the sftp subsystem, got %v", err)
	}
	if _, err := c.Run(ctx, "true"); err != nil {
		t.Fatalf("commands must still work: %v", err)
	}
	if s := c.Stats(); s.ChannelsOpen != 0 || s.Handshakes != 1 {
		t.Errorf("stats %+v: the refused session must be closed, the connection kept", s)
	}
}
