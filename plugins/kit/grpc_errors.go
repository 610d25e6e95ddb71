package kit

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Status is err as the gRPC status hpcbot reads its kind from, for a plugin
// that runs a gRPC server of its own (ServeScheduler and ServeRunner do this
// for every call).
func Status(err error) error { return toStatus(err) }

// toStatus is the serve side of error passing: the error's Kind becomes the gRPC
// code and its text the status message. Errors without a Kind are transient, as
// the contract says; a context error (the host gave up) stays one.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(kindCode(KindOf(err)), err.Error())
}

func kindCode(k Kind) codes.Code {
	switch k {
	case KindPermanent:
		return codes.FailedPrecondition
	case KindAuth:
		return codes.PermissionDenied
	case KindNotFound:
		return codes.NotFound
	}
	return codes.Unavailable
}
