package sshc

import (
	"log/slog"
	"time"
)

// Options tune a Client. The zero value of every field means its default; the
// defaults are the polite values HPC centres expect, and tests shorten the
// intervals to milliseconds.
type Options struct {
	// MaxChannels caps the channels (command sessions plus the SFTP session)
	// open at once on the connection. Default 8; sshd's MaxSessions defaults to 10.
	// At least 2: the SFTP session, once opened, keeps one for itself.
	MaxChannels int
	// KeepaliveInterval is the time between keepalive@openssh.com requests, and
	// also how long one may go unanswered before the connection is declared
	// dead and closed. A dead link is noticed within 2×KeepaliveInterval.
	// Default 15 s.
	KeepaliveInterval time.Duration
	// DialTimeout bounds one TCP connect plus SSH handshake and authentication.
	// Default 30 s.
	DialTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between failed dials, which
	// doubles from BackoffMin up to BackoffMax (±20 % jitter).
	// Defaults 15 s and 10 min.
	BackoffMin, BackoffMax time.Duration
	// HandshakeLimit is the most dials started in any HandshakeWindow.
	// Defaults 5 and 60 s.
	HandshakeLimit  int
	HandshakeWindow time.Duration
	// AuthFailLimit is how many refused authentications within AuthFailWindow
	// make the client give up for good. Defaults 2 and 30 min.
	AuthFailLimit  int
	AuthFailWindow time.Duration
	// RefusedWait is the first wait before reopening a channel the server
	// refused (MaxSessions reached); it doubles up to 16 times
	// this value while the server keeps refusing. Default 100 ms.
	RefusedWait time.Duration
	// MaxOutput caps what Run captures of stdout and of stderr, each.
	// Default 16 MiB.
	MaxOutput int
	// TransferWorkers is how many files PutDir and RemoveAll handle at once
	// over the one SFTP session. Default 4.
	TransferWorkers int
	// Logger receives connection events; nil means slog.Default(). The caller
	// adds its own attributes (cluster, plugin).
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultMaxChannels       = 8
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultDialTimeout       = 30 * time.Second
	DefaultBackoffMin        = 15 * time.Second
	DefaultBackoffMax        = 10 * time.Minute
	DefaultHandshakeLimit    = 5
	DefaultHandshakeWindow   = 60 * time.Second
	DefaultAuthFailLimit     = 2
	DefaultAuthFailWindow    = 30 * time.Minute
	DefaultRefusedWait       = 100 * time.Millisecond
	DefaultMaxOutput         = 16 << 20
	DefaultTransferWorkers   = 4
)

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&o.MaxChannels, DefaultMaxChannels)
	if o.MaxChannels < 2 {
		o.MaxChannels = 2 // the SFTP session keeps one; commands need another
	}
	def(&o.KeepaliveInterval, DefaultKeepaliveInterval)
	def(&o.DialTimeout, DefaultDialTimeout)
	def(&o.BackoffMin, DefaultBackoffMin)
	def(&o.BackoffMax, DefaultBackoffMax)
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	defInt(&o.HandshakeLimit, DefaultHandshakeLimit)
	def(&o.HandshakeWindow, DefaultHandshakeWindow)
	defInt(&o.AuthFailLimit, DefaultAuthFailLimit)
	def(&o.AuthFailWindow, DefaultAuthFailWindow)
	def(&o.RefusedWait, DefaultRefusedWait)
	defInt(&o.MaxOutput, DefaultMaxOutput)
	defInt(&o.TransferWorkers, DefaultTransferWorkers)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
