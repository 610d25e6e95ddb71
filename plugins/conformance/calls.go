// What every call's answer must satisfy: an error of a known gRPC code before
// the deadline, text fields within bounds, Version's name and version.

package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "hpcbot/plugins/proto"
)

// knownCodes are the gRPC codes the contract maps to a kind
// (plugins/grpc_errors.go: codeKind; plugins/kit/grpc_errors.go: kindCode), besides the context's own.
var knownCodes = []codes.Code{codes.FailedPrecondition, codes.InvalidArgument, codes.OutOfRange,
	codes.Unimplemented, codes.AlreadyExists, codes.PermissionDenied, codes.Unauthenticated,
	codes.NotFound, codes.Unavailable, codes.ResourceExhausted, codes.Aborted}

// callErr checks an error a call returned: one of the known codes, and an
// answer before the deadline.
func callErr(method string, ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s did not answer within %s", method, CallTimeout)
	}
	st, _ := status.FromError(err)
	if !slices.Contains(knownCodes, st.Code()) {
		return fmt.Errorf("%s returned %s %q: an error must carry a kind (FAILED_PRECONDITION permanent, UNAVAILABLE transient, PERMISSION_DENIED auth, NOT_FOUND), see plugins/proto/README.md", method, st.Code(), st.Message())
	}
	return nil
}

func permanent(method string, ctx context.Context, err error) error {
	if err == nil {
		return fmt.Errorf("%s accepted it", method)
	}
	if e := callErr(method, ctx, err); e != nil {
		return e
	}
	switch c := status.Code(err); c {
	case codes.FailedPrecondition, codes.InvalidArgument:
		return nil
	default:
		return fmt.Errorf("%s refused it with %s %q: a configuration mistake is permanent (FAILED_PRECONDITION)", method, c, status.Convert(err).Message())
	}
}

func call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, CallTimeout)
}

// text checks a text field of a reply: valid UTF-8, at most 256 bytes.
func text(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8: %q", field, s)
	}
	if len(s) > 256 {
		return fmt.Errorf("%s is %d bytes long (at most 256)", field, len(s))
	}
	return nil
}

func version(ctx context.Context, fn func(context.Context, *pb.VersionRequest, ...grpc.CallOption) (*pb.VersionReply, error)) error {
	cctx, cancel := call(ctx)
	defer cancel()
	r, err := fn(cctx, &pb.VersionRequest{})
	if err != nil {
		if e := callErr("Version", cctx, err); e != nil {
			return e
		}
		return fmt.Errorf("Version: %w", err)
	}
	if r.GetName() == "" || r.GetVersion() == "" {
		return fmt.Errorf("Version answered name %q version %q: both must be set", r.GetName(), r.GetVersion())
	}
	return errors.Join(text("Version name", r.GetName()), text("Version version", r.GetVersion()))
}
