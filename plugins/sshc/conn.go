package sshc

import (
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"hpcbot/plugins"
)

// conn is one SSH connection and what lives on it. It ends once, for one
// reason (err), after which every call using it fails with that reason.
type conn struct {
	c    *Client
	ssh  *ssh.Client
	raw  net.Conn
	done chan struct{} // closed when the connection has ended
	once sync.Once
	err  error // why it ended; written before done is closed

	sftpMu sync.Mutex
	sftp   *sftpAttempt // the latest try at opening the SFTP session; nil before the first
}

func newConn(c *Client, client *ssh.Client, raw net.Conn) *conn {
	cn := &conn{c: c, ssh: client, raw: raw, done: make(chan struct{})}
	go func() {
		err := client.Wait()
		cn.fail(plugins.Errorf(plugins.KindTransient, "connection to %s lost: %w", c.name, errOrEOF(err)))
	}()
	go cn.keepalive(c.opts.KeepaliveInterval)
	return cn
}

func errOrEOF(err error) error {
	if err == nil {
		return fmt.Errorf("closed by the server")
	}
	return err
}

// alive reports whether the connection has not ended.
func (cn *conn) alive() bool {
	select {
	case <-cn.done:
		return false
	default:
		return true
	}
}

// fail ends the connection with err (the first reason wins).
func (cn *conn) fail(err error) {
	cn.once.Do(func() {
		cn.err = err
		close(cn.done)
		// Closing the socket first unblocks writers stuck on a dead link.
		_ = cn.raw.Close()
		_ = cn.ssh.Close()
		if err != errClosed {
			cn.c.log.Warn("ssh connection closed", "err", err)
		}
	})
}

// keepalive sends keepalive@openssh.com every interval and ends the connection
// when a reply has not come within the next interval. The reply may be a
// failure (OpenSSH does not know the request); any reply proves the link lives.
// So a link that dies right after a reply is noticed at most 2×interval later.
func (cn *conn) keepalive(interval time.Duration) {
	tick := time.NewTimer(interval)
	defer tick.Stop()
	for {
		select {
		case <-cn.done:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := cn.ssh.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timeout := time.NewTimer(interval)
		select {
		case err := <-reply:
			timeout.Stop()
			if err != nil {
				cn.fail(plugins.Errorf(plugins.KindTransient, "keepalive to %s failed: %w", cn.c.name, err))
				return
			}
		case <-timeout.C:
			cn.c.stats.keepaliveFailures.Add(1)
			cn.fail(plugins.Errorf(plugins.KindTransient,
				"no keepalive reply from %s within %s: link considered dead, connection closed", cn.c.name, interval))
			return
		case <-cn.done:
			timeout.Stop()
			return
		}
		tick.Reset(interval)
	}
}
