package sshc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"

	"hpcbot/plugins"
)

// sftpSession is the one SFTP session of a connection.
type sftpSession struct {
	cl          *sftp.Client
	home        string // login folder, for "~/"
	posixRename bool   // server has posix-rename@openssh.com
	done        chan struct{}
}

// sftpAttempt is one try at opening the SFTP session; s and err are set
// before ready is closed and never change afterwards.
type sftpAttempt struct {
	ready chan struct{}
	s     *sftpSession
	err   error
}

// usable reports whether a is in progress or produced a live session.
func (a *sftpAttempt) usable() bool {
	select {
	case <-a.ready:
	default:
		return true
	}
	if a.err != nil {
		return false
	}
	select {
	case <-a.s.done:
		return false
	default:
		return true
	}
}

// sftpFor returns the connection and its SFTP session, opening it on first
// use (and again after it ended while the connection stayed up).
func (c *Client) sftpFor(ctx context.Context) (*conn, *sftpSession, error) {
	cn, err := c.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	cn.sftpMu.Lock()
	a := cn.sftp
	if a == nil || !a.usable() {
		a = &sftpAttempt{ready: make(chan struct{})}
		cn.sftp = a
		go c.openSFTP(cn, a)
	}
	cn.sftpMu.Unlock()
	select {
	case <-a.ready:
	case <-ctx.Done():
		return nil, nil, ctxError("open sftp on "+c.name, ctx.Err())
	case <-cn.done:
		return nil, nil, cn.err
	}
	if a.err != nil {
		return nil, nil, a.err
	}
	return cn, a.s, nil
}

// openSFTP opens the SFTP session in the background: it holds one channel slot
// for as long as it lives, and callers waiting for it each keep their own deadline.
func (c *Client) openSFTP(cn *conn, a *sftpAttempt) {
	defer close(a.ready)
	s, closeSession, err := c.openSession(c.ctx, cn)
	if err != nil {
		a.err = err
		return
	}
	fail := func(what string, err error) {
		closeSession()
		if !cn.alive() {
			a.err = cn.err
			return
		}
		a.err = plugins.Errorf(plugins.KindTransient, "%s on %s: %w", what, c.name, err)
	}
	w, err := s.StdinPipe()
	if err != nil {
		fail("sftp stdin", err)
		return
	}
	r, err := s.StdoutPipe()
	if err != nil {
		fail("sftp stdout", err)
		return
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		fail("start the sftp subsystem", err)
		if cn.alive() {
			// Some login nodes disable SFTP; asking again will not help.
			a.err = plugins.Errorf(plugins.KindPermanent,
				"%s refused the sftp subsystem, which file transfers need (ask its admins to enable it): %w", c.name, err)
		}
		return
	}
	// A server that accepts the subsystem and never answers would hang the
	// version exchange: closing the session ends it.
	guard := time.AfterFunc(c.opts.DialTimeout, closeSession)
	cl, err := sftp.NewClientPipe(r, &packetCounter{WriteCloser: w, n: &c.stats.sftpRequests},
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		guard.Stop()
		fail("sftp handshake", err)
		return
	}
	home, err := cl.Getwd()
	if !guard.Stop() {
		err = errors.New("timed out")
	}
	if err != nil {
		_ = cl.Close()
		fail("sftp getwd", err)
		return
	}
	_, posix := cl.HasExtension("posix-rename@openssh.com")
	ss := &sftpSession{cl: cl, home: home, posixRename: posix, done: make(chan struct{})}
	go func() {
		_ = cl.Wait()
		close(ss.done)
		closeSession()
	}()
	a.s = ss
}

// packetCounter counts the SFTP packets written through it. Each packet starts
// with its length, a 4-byte big-endian number
// (https://datatracker.ietf.org/doc/html/draft-ietf-secsh-filexfer-02#section-3);
// pkg/sftp writes one packet at a time, so Write is never called concurrently.
type packetCounter struct {
	io.WriteCloser
	n     *atomic.Int64
	hdr   [4]byte
	inHdr int    // length bytes seen of the next packet
	left  uint32 // bytes left of the current packet
}

func (p *packetCounter) Write(b []byte) (int, error) {
	n, err := p.WriteCloser.Write(b)
	for rest := b[:n]; len(rest) > 0; {
		if p.left > 0 {
			k := min(uint32(len(rest)), p.left)
			p.left -= k
			rest = rest[k:]
			continue
		}
		p.hdr[p.inHdr] = rest[0]
		p.inHdr++
		rest = rest[1:]
		if p.inHdr == len(p.hdr) {
			p.left, p.inHdr = binary.BigEndian.Uint32(p.hdr[:]), 0
			p.n.Add(1)
		}
	}
	return n, err
}

// abs expands a leading "~/" (or a lone "~") with the login folder; other
// paths are used as given, relative ones against the login folder.
func (s *sftpSession) abs(p string) string {
	switch {
	case p == "~":
		return s.home
	case strings.HasPrefix(p, "~/"):
		return path.Join(s.home, p[2:])
	}
	return p
}

// do runs op on the SFTP session and returns when op ends, ctx ends or the
// connection is lost, whichever comes first. op gets ctx and must stop soon
// after it ends (transfers check it at every packet); an op abandoned on a
// dead link ends when the keepalive closes the connection.
func (c *Client) do(ctx context.Context, what string, op func(ctx context.Context, s *sftpSession) error) error {
	cn, s, err := c.sftpFor(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- op(ctx, s) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		return ctxError(what, ctx.Err())
	case <-cn.done:
		return fmt.Errorf("%s: %w", what, cn.err)
	}
	return classify(what, err, cn, s)
}

// classify gives an SFTP error its kind.
func classify(what string, err error, cn *conn, s *sftpSession) error {
	var pe *plugins.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ctxError(what, err)
	case !cn.alive():
		return fmt.Errorf("%s: %w", what, cn.err)
	case errors.Is(err, fs.ErrNotExist):
		return plugins.Errorf(plugins.KindNotFound, "%s: %w", what, err)
	case errors.Is(err, fs.ErrPermission):
		return plugins.Errorf(plugins.KindPermanent, "%s: %w", what, err)
	}
	select {
	case <-s.done:
		return plugins.Errorf(plugins.KindTransient, "%s: sftp session ended: %w", what, err)
	default:
	}
	var se *sftp.StatusError
	var errno syscall.Errno // MkdirAll's "not a directory"
	if errors.As(err, &se) || errors.As(err, &errno) {
		// Quota, read-only file system, a file where a folder should be:
		// the server's answer will be the same next time.
		return plugins.Errorf(plugins.KindPermanent, "%s: %w", what, err)
	}
	return plugins.Errorf(plugins.KindTransient, "%s: %w", what, err)
}
