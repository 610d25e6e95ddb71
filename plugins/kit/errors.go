package kit

import (
	"errors"
	"fmt"
)

// Kind says what a caller should do with an error that crossed the plugin boundary.
type Kind int

const (
	// KindTransient: infrastructure trouble (connection refused, timeout, cluster in
	// maintenance, plugin restarting). Retry later with backoff; never fail a calculation on it alone.
	KindTransient Kind = iota
	// KindPermanent: retrying cannot help (sbatch rejected the script, bad argument,
	// missing input file). The calculation goes to error at once.
	KindPermanent
	// KindAuth: the cluster refused our credentials or presented an unknown host key.
	// Permanent, and the cluster is unusable until an admin acts.
	KindAuth
	// KindNotFound: the job or folder does not exist (any more).
	KindNotFound
)

func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindPermanent:
		return "permanent"
	case KindAuth:
		return "auth"
	case KindNotFound:
		return "not found"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is an error with a Kind. Plugins return it (or wrap one) so the host can
// carry the kind over gRPC; errors without a kind are treated as transient.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Msg != "" {
		return e.Msg + ": " + e.Err.Error()
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k with a formatted message (%w wraps as usual).
func Errorf(k Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: k, Err: err}
}

// KindOf reports the kind of err: the kind of the first *Error in its chain, else transient.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindTransient
}

// IsTransient reports whether err is worth retrying later.
func IsTransient(err error) bool { return err != nil && KindOf(err) == KindTransient }
