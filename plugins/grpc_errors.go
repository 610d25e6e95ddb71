package plugins

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func codeKind(c codes.Code) Kind {
	switch c {
	case codes.FailedPrecondition, codes.InvalidArgument, codes.OutOfRange, codes.Unimplemented, codes.AlreadyExists:
		return KindPermanent
	case codes.PermissionDenied, codes.Unauthenticated:
		return KindAuth
	case codes.NotFound:
		return KindNotFound
	}
	// Unavailable, DeadlineExceeded, Canceled, ResourceExhausted, Aborted,
	// Internal, Unknown, DataLoss: retrying later may help.
	return KindTransient
}

// fromStatus is the host side: a gRPC error becomes an *Error of the matching
// kind with the plugin's message. When ctx ended, the error is transient and
// wraps ctx's error, whatever the transport made of it.
func fromStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &Error{Kind: KindTransient, Msg: "plugin call", Err: context.Cause(ctx)}
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Kind: KindTransient, Err: err}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return &Error{Kind: KindTransient, Err: statusError{st.Message(), context.DeadlineExceeded}}
	case codes.Canceled:
		return &Error{Kind: KindTransient, Err: statusError{st.Message(), context.Canceled}}
	case codes.Unavailable:
		return &Error{Kind: KindTransient, Err: statusError{st.Message(), errUnavailable}}
	}
	return &Error{Kind: codeKind(st.Code()), Msg: st.Message()}
}

// errUnavailable marks an UNAVAILABLE status: the plugin's own transient error,
// or a connection that broke because the process died. The host tells them apart.
var errUnavailable = errors.New("unavailable")

// statusError keeps a status message as the error text and a sentinel for errors.Is.
type statusError struct {
	msg string
	err error
}

func (e statusError) Error() string { return e.msg }
func (e statusError) Unwrap() error { return e.err }
