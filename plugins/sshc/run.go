package sshc

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"hpcbot/internal/backoff"
	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

// Run runs cmd on the cluster and returns what it printed and its exit code.
//
// cmd goes verbatim to the server, whose sshd runs it with the user's login
// shell as `$SHELL -c cmd`: it must already be quoted for a POSIX shell
// (plugins/shellquote), and nothing here expands "~" or quotes anything. A
// login shell of the csh family (csh, tcsh) quotes differently: hpcbot assumes
// a POSIX login shell (sh, bash, dash, ksh, zsh). The command runs in the login
// folder with no terminal and empty stdin.
//
// A non-zero exit is not an error: ExitCode carries it. A command killed by a
// signal reports 128+n for the signal's number n (128 for a signal the library
// does not know), as a shell would. A server that sends neither an exit status
// nor a signal gives ExitCode -1 and no error.
//
// stdout and stderr are captured up to Options.MaxOutput each; past that the
// rest is discarded, the command still runs to its end, and Run returns the
// truncated result with an error of kind permanent.
//
// When ctx ends first Run returns a transient error at once; in the background
// the command is sent SIGKILL and its session closed. OpenSSH 7.9+ delivers the
// signal to the command's process group (the shell and its children); other
// servers may ignore it, and then closing the session is all that happens.
func (c *Client) Run(ctx context.Context, cmd string) (cluster.RunResult, error) {
	c.stats.commands.Add(1)
	cn, err := c.connect(ctx)
	if err != nil {
		return cluster.RunResult{}, err
	}
	s, closeSession, err := c.openSession(ctx, cn)
	if err != nil {
		return cluster.RunResult{}, err
	}
	abandoned := false // then a goroutine closes the session
	defer func() {
		if !abandoned {
			closeSession()
		}
	}()

	stdout := &cappedBuffer{max: c.opts.MaxOutput}
	stderr := &cappedBuffer{max: c.opts.MaxOutput}
	s.Stdout = stdout
	s.Stderr = stderr
	// Start waits for the server's answer to the exec request, so it runs in
	// the goroutine too: on a dead link only ctx or the keepalive ends the wait.
	started := make(chan struct{})  // closed when the command started
	returned := make(chan struct{}) // closed when Start returned, either way
	waited := make(chan error, 1)
	go func() {
		err := s.Start(cmd)
		if err == nil {
			close(started)
		}
		close(returned)
		if err != nil {
			waited <- err
			return
		}
		waited <- s.Wait()
	}()
	select {
	case err = <-waited:
	case <-ctx.Done():
		// Signal and Close write to the connection, which on a dead link
		// blocks until the keepalive gives up: they run in the background.
		// The signal waits for the answer to the exec request; sent before
		// it, the signal could overtake the command and be lost.
		abandoned = true
		go func() {
			<-returned
			select {
			case <-started:
				_ = s.Signal(ssh.SIGKILL)
			default:
			}
			closeSession()
		}()
		return cluster.RunResult{}, plugins.Errorf(plugins.KindTransient,
			"command on %s abandoned at its deadline, sent KILL, session closed: %w", c.name, ctx.Err())
	case <-cn.done:
		return cluster.RunResult{}, cn.err
	}
	select {
	case <-started:
	default:
		if !cn.alive() {
			return cluster.RunResult{}, cn.err
		}
		return cluster.RunResult{}, plugins.Errorf(plugins.KindTransient, "start command on %s: %w", c.name, err)
	}

	res := cluster.RunResult{Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes()}
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitStatus()
	case errors.As(err, &missing):
		if !cn.alive() {
			return cluster.RunResult{}, cn.err
		}
		res.ExitCode = -1
	default:
		if !cn.alive() {
			return cluster.RunResult{}, cn.err
		}
		return cluster.RunResult{}, plugins.Errorf(plugins.KindTransient, "command on %s: %w", c.name, err)
	}
	if stdout.dropped > 0 || stderr.dropped > 0 {
		return res, plugins.Errorf(plugins.KindPermanent,
			"command on %s printed more than the %d bytes kept per stream (%d bytes of stdout and %d of stderr dropped); redirect its output to a file",
			c.name, c.opts.MaxOutput, stdout.dropped, stderr.dropped)
	}
	return res, nil
}

// cappedBuffer keeps the first max bytes written and counts the rest.
type cappedBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int64
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - b.buf.Len()
	if room >= len(p) {
		return b.buf.Write(p)
	}
	if room > 0 {
		b.buf.Write(p[:room])
	}
	b.dropped += int64(len(p) - max(room, 0))
	return len(p), nil
}

// acquire takes one channel slot.
func (c *Client) acquire(ctx context.Context, cn *conn) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctxError("wait for a free channel on "+c.name, ctx.Err())
	case <-cn.done:
		return cn.err
	}
	n := c.stats.channels.Add(1)
	for {
		hw := c.stats.highWater.Load()
		if n <= hw || c.stats.highWater.CompareAndSwap(hw, n) {
			break
		}
	}
	return nil
}

// release gives a channel slot back.
func (c *Client) release() {
	c.stats.channels.Add(-1)
	<-c.sem
}

// openSession opens a session channel within the channel cap. A server that
// refuses it because its MaxSessions is reached is waited out with growing
// pauses until ctx ends; the connection stays up. OpenSSH before 7.x said
// "administratively prohibited", 9.x says "connect failed (open failed)", other
// servers "resource shortage": every refusal of a session channel is taken as
// "busy". The returned func closes the session and frees the slot; it may be
// called more than once.
func (c *Client) openSession(ctx context.Context, cn *conn) (*ssh.Session, func(), error) {
	if err := c.acquire(ctx, cn); err != nil {
		return nil, nil, err
	}
	for refusals := 1; ; refusals++ {
		opened := make(chan sessionResult, 1)
		go func() {
			s, err := cn.ssh.NewSession()
			opened <- sessionResult{s, err}
		}()
		var r sessionResult
		select {
		case r = <-opened:
		case <-ctx.Done():
			go c.discardSession(opened)
			return nil, nil, ctxError("open a session on "+c.name, ctx.Err())
		case <-cn.done:
			go c.discardSession(opened)
			return nil, nil, cn.err
		}
		if r.err == nil {
			var once sync.Once
			return r.s, func() {
				once.Do(func() {
					_ = r.s.Close()
					c.release()
				})
			}, nil
		}
		var refused *ssh.OpenChannelError
		if !errors.As(r.err, &refused) || refused.Reason == ssh.UnknownChannelType {
			c.release()
			if !cn.alive() {
				return nil, nil, cn.err
			}
			return nil, nil, plugins.Errorf(plugins.KindTransient, "open a session on %s: %w", c.name, r.err)
		}
		c.stats.refused.Add(1)
		wait := backoff.Delay(c.opts.RefusedWait, 16*c.opts.RefusedWait, refusals)
		c.log.Debug("ssh channel refused, waiting", "reason", refused.Message, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			c.release()
			return nil, nil, ctxError("wait for the server to accept a session on "+c.name, ctx.Err())
		case <-cn.done:
			t.Stop()
			c.release()
			return nil, nil, cn.err
		}
	}
}

type sessionResult struct {
	s   *ssh.Session
	err error
}

// discardSession closes a session whose opener gave up waiting, then frees its
// slot, so the server never holds more channels than the cap.
func (c *Client) discardSession(opened <-chan sessionResult) {
	r := <-opened
	if r.s != nil {
		_ = r.s.Close()
	}
	c.release()
}
