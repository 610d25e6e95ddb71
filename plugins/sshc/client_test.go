package sshc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"hpcbot/plugins"
)

func TestConnectAndReuse(t *testing.T) {
	b := sshBed(t)
	tests := []struct {
		name string
		cfg  plugins.Connection
	}{
		{"known_hosts", b.conn()},
		{"pinned host key", b.pinned(t, b.Port)},
		{"pinned key wins over a wrong known_hosts", func() plugins.Connection {
			c := b.pinned(t, b.Port)
			c.KnownHosts = filepath.Join(t.TempDir(), "empty")
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.cfg, Options{})
			ctx := ctxFor(t, time.Minute)
			for i := range 5 {
				r, err := c.Run(ctx, "whoami")
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				if got := strings.TrimSpace(string(r.Stdout)); got != b.User || r.ExitCode != 0 {
					t.Fatalf("whoami = %q exit %d, want %q exit 0", got, r.ExitCode, b.User)
				}
			}
			if _, err := c.List(ctx, "."); err != nil {
				t.Fatalf("list: %v", err)
			}
			if s := c.Stats(); s.Handshakes != 1 || !s.Connected {
				t.Errorf("stats %+v: want one handshake for every command and transfer, connected", s)
			}
		})
	}
}

func TestHostKeyRefused(t *testing.T) {
	b := sshBed(t)
	real := b.hostPublicKey(t)
	other, _ := randomKey(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hostPattern := knownhosts.Normalize(b.conn().Host + ":" + strconv.Itoa(b.Port))
	tests := []struct {
		name string
		cfg  func(plugins.Connection) plugins.Connection
		want string // also in the message
	}{
		{"wrong pinned key", func(c plugins.Connection) plugins.Connection {
			c.KnownHosts = ""
			c.HostKey = authorizedLine(other)
			return c
		}, "does not match the pinned host_key"},
		{"changed key in known_hosts", func(c plugins.Connection) plugins.Connection {
			c.KnownHosts = write("changed", knownhosts.Line([]string{hostPattern}, other)+"\n")
			return c
		}, "CHANGED"},
		{"host not in known_hosts", func(c plugins.Connection) plugins.Connection {
			c.KnownHosts = write("unknown", knownhosts.Line([]string{"[elsewhere]:2222"}, real)+"\n")
			return c
		}, "add the line"},
		{"revoked key", func(c plugins.Connection) plugins.Connection {
			c.KnownHosts = write("revoked", "@revoked * "+authorizedLine(real)+"\n"+knownhosts.Line([]string{hostPattern}, real)+"\n")
			return c
		}, "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.cfg(b.conn()), Options{BackoffMin: time.Millisecond, BackoffMax: time.Millisecond})
			ctx := ctxFor(t, time.Minute)
			for i := range 4 {
				_, err := c.Run(ctx, "true")
				if err == nil {
					t.Fatal("connected despite a refused host key")
				}
				if k := plugins.KindOf(err); k != plugins.KindAuth {
					t.Fatalf("call %d: kind %v, want auth: %v", i, k, err)
				}
				if fp := ssh.FingerprintSHA256(real); !strings.Contains(err.Error(), fp) {
					t.Errorf("call %d: error lacks the presented key's fingerprint %s: %v", i, fp, err)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("call %d: error lacks %q: %v", i, tt.want, err)
				}
			}
			if s := c.Stats(); s.Handshakes != 1 || s.HostKeyFailures != 1 {
				t.Errorf("stats %+v: want exactly one handshake, never retried", s)
			}
		})
	}
}

func TestWrongPrivateKey(t *testing.T) {
	b := sshBed(t)
	_, priv := randomKey(t)
	keyPath := filepath.Join(t.TempDir(), "id_wrong")
	if err := os.WriteFile(keyPath, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := b.conn()
	cfg.KeyPath = keyPath
	c := newClient(t, cfg, Options{BackoffMin: time.Millisecond, BackoffMax: time.Millisecond})
	ctx := ctxFor(t, time.Minute)
	var last error
	for i := range 20 {
		_, err := c.Run(ctx, "true")
		if k := plugins.KindOf(err); err == nil || k != plugins.KindAuth {
			t.Fatalf("call %d: kind %v, want auth: %v", i, k, err)
		}
		last = err
		time.Sleep(2 * time.Millisecond) // past the backoff, so only the give-up rule can stop a dial
	}
	if s := c.Stats(); s.Handshakes != 2 || s.AuthFailures != 2 {
		t.Errorf("stats %+v: want 2 handshakes and 2 auth failures however many calls", s)
	}
	if !strings.Contains(last.Error(), "fix the credentials and restart") || !strings.Contains(last.Error(), cfg.User+"@") {
		t.Errorf("final error does not tell the admin what to do: %v", last)
	}
}

func TestEncryptedKey(t *testing.T) {
	b := sshBed(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "id_enc")
	data, err := os.ReadFile(b.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, data, 0o600); err != nil {
		t.Fatal(err)
	}
	const pass = "correct horse battery"
	if out, err := exec.Command("ssh-keygen", "-q", "-p", "-f", key, "-P", "", "-N", pass).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -p: %v\n%s", err, out)
	}
	t.Setenv("SSHC_TEST_PASS", pass)
	t.Setenv("SSHC_TEST_WRONG", "not the passphrase")
	cfg := b.conn()
	cfg.KeyPath = key

	tests := []struct {
		name    string
		env     string
		kind    plugins.Kind
		message string
	}{
		{"no passphrase configured", "", plugins.KindAuth, "key_passphrase_env"},
		{"env var unset", "SSHC_TEST_UNSET", plugins.KindAuth, "SSHC_TEST_UNSET"},
		{"wrong passphrase", "SSHC_TEST_WRONG", plugins.KindAuth, "passphrase from $SSHC_TEST_WRONG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cfg
			cfg.KeyPassEnv = tt.env
			_, err := New(cfg, Options{})
			if err == nil || plugins.KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("New: %v; want kind %v mentioning %q", err, tt.kind, tt.message)
			}
			if strings.Contains(err.Error(), "not the passphrase") || strings.Contains(err.Error(), pass) {
				t.Fatalf("error leaks a passphrase: %v", err)
			}
		})
	}
	t.Run("right passphrase", func(t *testing.T) {
		cfg := cfg
		cfg.KeyPassEnv = "SSHC_TEST_PASS"
		c := newClient(t, cfg, Options{})
		if _, err := c.Run(ctxFor(t, time.Minute), "true"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	good := plugins.Connection{Host: "h", User: "u", Password: "s3cret-value", KnownHosts: os.DevNull}
	tests := []struct {
		name string
		edit func(*plugins.Connection)
		want string
	}{
		{"no host key source", func(c *plugins.Connection) { c.KnownHosts = "" }, "neither known_hosts nor host_key"},
		{"bad pinned key", func(c *plugins.Connection) { c.HostKey = "ssh-ed25519 not-base64" }, "authorized_keys format"},
		{"missing known_hosts file", func(c *plugins.Connection) { c.KnownHosts = "/nonexistent/known_hosts" }, "known_hosts"},
		{"no credential", func(c *plugins.Connection) { c.Password = "" }, "neither key_path nor password"},
		{"missing key file", func(c *plugins.Connection) { c.KeyPath = "/nonexistent/id" }, "read private key"},
		{"no host", func(c *plugins.Connection) { c.Host = "" }, "no host"},
		{"no user", func(c *plugins.Connection) { c.User = "" }, "no user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			c, err := New(cfg, Options{})
			if err == nil {
				c.Close()
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret-value") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
	c, err := New(good, Options{})
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	c.Close()
}

func TestHandshakeLimiter(t *testing.T) {
	// Nothing listens on the port: every dial is refused at once. However
	// often the callers ask, at most HandshakeLimit dials start in the window.
	cfg := plugins.Connection{Host: "127.0.0.1", Port: freePort(t), User: "u", Password: "p", KnownHosts: os.DevNull}
	c := newClient(t, cfg, Options{BackoffMin: time.Millisecond, BackoffMax: time.Millisecond})
	ctx := ctxFor(t, time.Minute)
	var last error
	for range 50 {
		_, err := c.Run(ctx, "true")
		if err == nil || plugins.KindOf(err) != plugins.KindTransient {
			t.Fatalf("want a transient error, got %v", err)
		}
		last = err
		time.Sleep(2 * time.Millisecond)
	}
	if s := c.Stats(); s.Handshakes != DefaultHandshakeLimit {
		t.Errorf("%d dials, want exactly the limit %d", s.Handshakes, DefaultHandshakeLimit)
	}
	if !strings.Contains(last.Error(), "next attempt in") || !strings.Contains(last.Error(), "connection refused") {
		t.Errorf("error should say when the next attempt is and why: %v", last)
	}
}

func TestBackoffMessage(t *testing.T) {
	cfg := plugins.Connection{Host: "127.0.0.1", Port: freePort(t), User: "u", Password: "p", KnownHosts: os.DevNull}
	c := newClient(t, cfg, Options{}) // the real 15 s backoff
	ctx := ctxFor(t, time.Minute)
	_, err := c.Run(ctx, "true")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	_, err = c.Run(ctx, "true")
	if !strings.Contains(err.Error(), "unreachable, next attempt in 1") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("want 'unreachable, next attempt in 1Ns: ... connection refused', got %v", err)
	}
	if s := c.Stats(); s.Handshakes != 1 {
		t.Errorf("%d dials during the backoff, want 1", s.Handshakes)
	}
	if plugins.KindOf(err) != plugins.KindTransient {
		t.Errorf("kind %v, want transient", plugins.KindOf(err))
	}
}
