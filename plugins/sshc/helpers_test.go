package sshc

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"hpcbot/internal/testbed"
	"hpcbot/plugins"
)

// bed is the test bed's sshd (hpcbot/internal/testbed) with helpers of this package.
type bed struct{ testbed.SSHEnv }

// sshBed returns the test bed's sshd, or skips (fails under CI=true).
func sshBed(t testing.TB) bed {
	t.Helper()
	return bed{testbed.SSH(t)}
}

// conn is the bed's connection with host keys checked against its known_hosts.
func (b bed) conn() plugins.Connection {
	return plugins.Connection{Host: b.Host, Port: b.Port, User: b.User, KeyPath: b.KeyPath, KnownHosts: b.KnownHosts}
}

// pinned is the bed's connection to addr (another port or a proxy) with its host key pinned.
func (b bed) pinned(t testing.TB, port int) plugins.Connection {
	t.Helper()
	return plugins.Connection{Host: b.Host, Port: port, User: b.User, KeyPath: b.KeyPath, HostKey: b.hostKey(t)}
}

// hostKey is the sshd's public host key, "ssh-ed25519 AAAA...".
func (b bed) hostKey(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(b.HostKeyPub)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		t.Fatalf("%s: not a public key", b.HostKeyPub)
	}
	return f[0] + " " + f[1]
}

func (b bed) hostPublicKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(b.hostKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newClient makes a client and closes it when the test ends.
func newClient(t testing.TB, cfg plugins.Connection, opts Options) *Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// randomKey returns a fresh ed25519 public key and the private key in OpenSSH PEM.
func randomKey(t testing.TB) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return sshPub, pem.EncodeToMemory(block)
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ownSSHD is a second sshd the test starts (same binary, same host key, user
// and key as the bed's), on its own port, with extra config lines, so the test
// can stop it without disturbing tests that share the bed's sshd.
type ownSSHD struct {
	t      testing.TB
	config string
	port   int
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
}

func startOwnSSHD(t testing.TB, b bed, extra ...string) *ownSSHD {
	t.Helper()
	testbed.Require(t, "a second sshd of the test's own (needs root, to switch to the test user)", os.Geteuid() == 0)
	base, err := os.ReadFile(b.SSHDConfig)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := freePort(t)
	override := map[string]bool{"port": true, "pidfile": true}
	for _, l := range extra {
		override[strings.ToLower(strings.Fields(l)[0])] = true
	}
	var cfg []string
	for _, l := range strings.Split(string(base), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && override[strings.ToLower(f[0])] {
			continue
		}
		cfg = append(cfg, l)
	}
	// Keywords before any Match block: put ours first.
	head := append([]string{"Port " + strconv.Itoa(port), "PidFile " + filepath.Join(dir, "sshd.pid")}, extra...)
	cfg = append(head, cfg...)
	s := &ownSSHD{t: t, config: filepath.Join(dir, "sshd_config"), port: port}
	if err := os.WriteFile(s.config, []byte(strings.Join(cfg, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/sbin/sshd", "-t", "-f", s.config).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v\n%s", err, out)
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start runs sshd -D in the background and waits until it accepts connections.
func (s *ownSSHD) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-f", s.config, "-E", s.config+".log")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(s.config + ".log")
			s.t.Fatalf("sshd exited at start:\n%s", log)
		case <-time.After(50 * time.Millisecond):
		}
		if i > 200 {
			s.t.Fatalf("sshd does not listen on %s: %v", addr, err)
		}
	}
}

// Stop kills the listener and every connection it accepted (its children), as a
// login node going down would.
func (s *ownSSHD) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	// The monitor process of each connection is a child of the listener; the
	// process that speaks to the network after login is ITS child, and
	// survives the monitor for a while: take the whole tree.
	kids := descendantsOf(pid)
	_ = s.cmd.Process.Kill()
	<-s.done
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	s.cmd = nil
}

// descendantsOf lists the pids below pid in the process tree (from /proc).
func descendantsOf(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				parent[p] = pp
			}
		}
	}
	var out []int
	want := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if want[pp] && !want[p] {
				want[p] = true
				out = append(out, p)
				changed = true
			}
		}
	}
	return out
}

// proxy forwards TCP connections to a target and can freeze: stop moving bytes
// without closing anything, the way a dead link (a cable pulled, a NAT entry
// dropped) looks to both ends.
type proxy struct {
	l      net.Listener
	target string
	delay  time.Duration // one-way latency added to every byte (set before use)
	mu     sync.Mutex
	frozen bool
	cond   *sync.Cond
	conns  []net.Conn
	closed bool
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	if p.delay > 0 {
		src = delayed(src, p.delay)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.frozen && !p.closed {
				p.cond.Wait()
			}
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) freeze() { p.mu.Lock(); p.frozen = true; p.mu.Unlock() }

func (p *proxy) thaw() { p.mu.Lock(); p.frozen = false; p.cond.Broadcast(); p.mu.Unlock() }

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	conns := p.conns
	p.mu.Unlock()
	p.l.Close()
	for _, c := range conns {
		c.Close()
	}
}

// delayedConn hands out what was read from a connection d after it arrived:
// latency without a bandwidth limit (up to 64 MiB in flight).
type delayedConn struct {
	net.Conn
	chunks chan delayedChunk
	cur    []byte
	err    error
}

type delayedChunk struct {
	at   time.Time
	data []byte
	err  error
}

func delayed(c net.Conn, d time.Duration) *delayedConn {
	dc := &delayedConn{Conn: c, chunks: make(chan delayedChunk, 2048)}
	go func() {
		for {
			buf := make([]byte, 32<<10)
			n, err := c.Read(buf)
			dc.chunks <- delayedChunk{time.Now().Add(d), buf[:n], err}
			if err != nil {
				close(dc.chunks)
				return
			}
		}
	}()
	return dc
}

func (dc *delayedConn) Read(p []byte) (int, error) {
	for len(dc.cur) == 0 {
		if dc.err != nil {
			return 0, dc.err
		}
		ch, ok := <-dc.chunks
		if !ok {
			return 0, io.EOF
		}
		time.Sleep(time.Until(ch.at))
		dc.cur, dc.err = ch.data, ch.err
	}
	n := copy(p, dc.cur)
	dc.cur = dc.cur[n:]
	return n, nil
}
