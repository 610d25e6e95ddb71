package sshc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"hpcbot/internal/backoff"
	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

// Client is a cluster.Transport over one SSH connection. It is safe for
// concurrent use. Create it with New and release it with Close.
type Client struct {
	cfg   plugins.Connection
	opts  Options
	addr  string // host:port as dialled and as looked up in known_hosts
	name  string // user@host:port, for messages
	log   *slog.Logger
	cred  *credential
	hkeys *hostKeyChecker

	sem chan struct{} // one token per open channel

	ctx    context.Context // ends at Close; aborts a dial in progress
	cancel context.CancelFunc

	mu            sync.Mutex
	cur           *conn         // the live connection, nil before the first dial or after a loss
	dialing       chan struct{} // closed when the dial in progress ends; nil when none runs
	closed        bool
	fatal         error       // set once the client gave up: refused host key, auth failures exhausted
	lastErr       error       // why the last dial failed
	nextDial      time.Time   // no dial before this (backoff)
	failures      int         // consecutive failed dials
	handshakes    []time.Time // start times of recent dials (sliding window)
	authFails     []time.Time // times of recent refused authentications
	serverVersion string

	wg sync.WaitGroup // dial goroutines

	stats struct {
		handshakes, authFailures, hostKeyFailures atomic.Int64
		channels, highWater, refused              atomic.Int64
		keepaliveFailures                         atomic.Int64
		commands                                  atomic.Int64
		sftpRequests                              atomic.Int64
	}
}

var _ cluster.Transport = (*Client)(nil)

// Transport opens the cluster's connection with sshc's defaults; it is the
// transport the SSH schedulers (slurm, pbs, ssh) give cluster.New.
func Transport(c plugins.Cluster) (cluster.Transport, error) {
	return New(c.Connection, Options{})
}

// New checks cfg (host key source, credential) and returns a Client. It does not
// connect: the first call dials. Errors are plugins.KindPermanent for an
// incomplete or unreadable configuration and plugins.KindAuth for a key that
// cannot be decrypted.
func New(cfg plugins.Connection, opts Options) (*Client, error) {
	if cfg.Host == "" {
		return nil, plugins.Errorf(plugins.KindPermanent, "connection has no host")
	}
	if cfg.User == "" {
		return nil, plugins.Errorf(plugins.KindPermanent, "connection to %s has no user", cfg.Host)
	}
	port := cfg.Port
	if port == 0 {
		port = 22
	}
	hk, err := newHostKeyChecker(cfg)
	if err != nil {
		return nil, err
	}
	cred, err := newCredential(cfg)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(port))
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		cfg:    cfg,
		opts:   opts,
		addr:   addr,
		name:   cfg.User + "@" + addr,
		log:    opts.Logger.With("remote", cfg.User+"@"+addr),
		cred:   cred,
		hkeys:  hk,
		sem:    make(chan struct{}, opts.MaxChannels),
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// Stats are counters for tests, benchmarks and `hpcbot check`.
type Stats struct {
	Handshakes        int64  // dials started (TCP connect + SSH handshake), whatever their outcome
	AuthFailures      int64  // handshakes whose authentication the server refused
	HostKeyFailures   int64  // handshakes stopped because the host key was refused
	ChannelsOpen      int64  // channels open now (the SFTP session included)
	ChannelsHighWater int64  // most channels ever open at once
	ChannelsRefused   int64  // channel opens the server refused (MaxSessions reached) and that were waited out
	KeepaliveFailures int64  // connections closed because a keepalive went unanswered
	Commands          int64  // remote commands run (Run)
	SFTPRequests      int64  // SFTP packets sent (the session's opening included): the file operations' cost
	Connected         bool   // a connection is up now
	ServerVersion     string // the server's identification ("SSH-2.0-OpenSSH_9.2p1 ..."), once connected
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	connected := c.cur != nil && c.cur.alive()
	version := c.serverVersion
	c.mu.Unlock()
	return Stats{
		Handshakes:        c.stats.handshakes.Load(),
		AuthFailures:      c.stats.authFailures.Load(),
		HostKeyFailures:   c.stats.hostKeyFailures.Load(),
		ChannelsOpen:      c.stats.channels.Load(),
		ChannelsHighWater: c.stats.highWater.Load(),
		ChannelsRefused:   c.stats.refused.Load(),
		KeepaliveFailures: c.stats.keepaliveFailures.Load(),
		Commands:          c.stats.commands.Load(),
		SFTPRequests:      c.stats.sftpRequests.Load(),
		Connected:         connected,
		ServerVersion:     version,
	}
}

// TransportStats is what the plugin reports to the host (plugins.StatsReporter).
func (c *Client) TransportStats() plugins.TransportStats {
	return plugins.TransportStats{Handshakes: c.stats.handshakes.Load(), Commands: c.stats.commands.Load(),
		AuthFailures: c.stats.authFailures.Load()}
}

// errClosed is returned by calls on a closed Client.
var errClosed = &plugins.Error{Kind: plugins.KindPermanent, Msg: "ssh client closed"}

// Close closes the connection and aborts a dial in progress. Calls after Close fail.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cur := c.cur
	c.cur = nil
	c.mu.Unlock()
	c.cancel()
	if cur != nil {
		cur.fail(errClosed)
	}
	c.wg.Wait()
	return nil
}

// connect returns the live connection, dialling if there is none and the
// backoff, the handshake limiter and the auth-failure rule allow it.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, ctxError("connect to "+c.name, err)
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errClosed
		}
		if c.fatal != nil {
			err := c.fatal
			c.mu.Unlock()
			return nil, err
		}
		if cn := c.cur; cn != nil {
			if cn.alive() {
				c.mu.Unlock()
				return cn, nil
			}
			c.cur = nil
		}
		if ch := c.dialing; ch != nil {
			c.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctxError("connect to "+c.name, ctx.Err())
			}
		}
		now := time.Now()
		if wait := c.nextDial.Sub(now); wait > 0 {
			err := c.lastErr
			c.mu.Unlock()
			if plugins.KindOf(err) == plugins.KindAuth {
				return nil, plugins.Errorf(plugins.KindAuth, "next attempt allowed in %s: %w", roundDuration(wait), err)
			}
			return nil, plugins.Errorf(plugins.KindTransient,
				"%s unreachable, next attempt in %s: %w", c.name, roundDuration(wait), err)
		}
		c.handshakes = pruneBefore(c.handshakes, now.Add(-c.opts.HandshakeWindow))
		if len(c.handshakes) >= c.opts.HandshakeLimit {
			wait := c.handshakes[0].Add(c.opts.HandshakeWindow).Sub(now)
			last := c.lastErr
			c.mu.Unlock()
			msg := fmt.Sprintf("%s: %d connections started in the last %s, the most allowed; next attempt in %s",
				c.name, c.opts.HandshakeLimit, c.opts.HandshakeWindow, roundDuration(wait))
			if last != nil {
				return nil, plugins.Errorf(plugins.KindTransient, "%s: %w", msg, last)
			}
			return nil, &plugins.Error{Kind: plugins.KindTransient, Msg: msg}
		}
		c.handshakes = append(c.handshakes, now)
		ch := make(chan struct{})
		c.dialing = ch
		c.wg.Add(1)
		go c.dial(ch)
		c.mu.Unlock()
	}
}

// dialOutcome classifies a failed handshake.
type dialOutcome int

const (
	dialOK dialOutcome = iota
	dialFailed
	dialAuthRefused
	dialHostKeyRefused
)

// dial runs one handshake in the background (a caller's short deadline must not
// abort it and count as a failure) and records its outcome.
func (c *Client) dial(done chan struct{}) {
	defer c.wg.Done()
	c.stats.handshakes.Add(1)
	cn, outcome, err := c.handshake()

	c.mu.Lock()
	defer func() {
		c.dialing = nil
		close(done)
		c.mu.Unlock()
	}()
	if c.closed {
		if cn != nil {
			cn.fail(errClosed)
		}
		return
	}
	now := time.Now()
	switch outcome {
	case dialOK:
		c.cur = cn
		c.serverVersion = string(cn.ssh.ServerVersion())
		c.failures = 0
		c.lastErr = nil
		c.nextDial = time.Time{}
		c.log.Info("ssh connected", "server", c.serverVersion)
		return
	case dialHostKeyRefused:
		c.stats.hostKeyFailures.Add(1)
		c.fatal = err
		c.lastErr = err
		c.log.Error("ssh host key refused; not retrying", "err", err)
		return
	case dialAuthRefused:
		c.stats.authFailures.Add(1)
		c.authFails = append(pruneBefore(c.authFails, now.Add(-c.opts.AuthFailWindow)), now)
		if n := len(c.authFails); n >= c.opts.AuthFailLimit {
			c.fatal = plugins.Errorf(plugins.KindAuth,
				"authentication to %s refused %d times within %s; fix the credentials and restart hpcbot (not retrying, to keep the bot's address off the cluster's ban list): %w",
				c.name, n, c.opts.AuthFailWindow, err)
			c.lastErr = c.fatal
			c.log.Error("ssh authentication refused; giving up", "attempts", n, "err", err)
			return
		}
	}
	c.lastErr = err
	c.failures++
	wait := backoff.Delay(c.opts.BackoffMin, c.opts.BackoffMax, c.failures)
	c.nextDial = now.Add(wait)
	c.log.Warn("ssh connect failed", "err", err, "retry_in", roundDuration(wait))
}

// handshake dials and authenticates once.
func (c *Client) handshake() (*conn, dialOutcome, error) {
	check, algos, err := c.hkeys.callback(c.addr)
	if err != nil {
		return nil, dialHostKeyRefused, err
	}
	var keyErr atomic.Pointer[hostKeyError] // set by the callback, which runs in the library's goroutine
	var keyOK atomic.Bool
	config := &ssh.ClientConfig{
		User: c.cfg.User,
		Auth: c.cred.methods(),
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			if err := check(hostname, remote, key); err != nil {
				var hk *hostKeyError
				if !errors.As(err, &hk) {
					hk = &hostKeyError{msg: err.Error()}
				}
				keyErr.Store(hk)
				return hk
			}
			keyOK.Store(true)
			return nil
		},
		HostKeyAlgorithms: algos,
		// Admins reading sshd's logs can tell the bot from people.
		ClientVersion: "SSH-2.0-hpcbot",
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.DialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, dialFailed, plugins.Errorf(plugins.KindTransient, "%w", err)
	}
	// The handshake has no context of its own: a deadline bounds it on a
	// link that accepts the TCP connection and then says nothing, and Close
	// (c.ctx) interrupts it.
	_ = raw.SetDeadline(time.Now().Add(c.opts.DialTimeout))
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	sc, chans, reqs, err := ssh.NewClientConn(raw, c.addr, config)
	stop()
	if err != nil {
		_ = raw.Close()
		switch hk := keyErr.Load(); {
		case hk != nil:
			return nil, dialHostKeyRefused, &plugins.Error{Kind: plugins.KindAuth, Err: hk}
		case keyOK.Load() && isAuthRefusal(err):
			return nil, dialAuthRefused, plugins.Errorf(plugins.KindAuth, "authentication to %s refused: %w", c.name, err)
		}
		return nil, dialFailed, plugins.Errorf(plugins.KindTransient, "ssh handshake with %s: %w", c.addr, err)
	}
	_ = raw.SetDeadline(time.Time{})
	cn := newConn(c, ssh.NewClient(sc, chans, reqs), raw)
	return cn, dialOK, nil
}

// isAuthRefusal reports whether a handshake error (after a good host key) means
// the server refused our credential.
func isAuthRefusal(err error) bool {
	if errors.Is(err, errPasswordRefused) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "unable to authenticate") ||
		strings.Contains(s, "Too many authentication failures")
}

// pruneBefore drops the times before t from the sorted slice ts.
func pruneBefore(ts []time.Time, t time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(t) {
		i++
	}
	return append(ts[:0], ts[i:]...)
}

// roundDuration prints waits the way people read them: whole seconds, or
// milliseconds below a second.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// ctxError turns a context's end into a transient error.
func ctxError(what string, err error) error {
	return plugins.Errorf(plugins.KindTransient, "%s: %w", what, err)
}
