package plugins

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"hpcbot/plugins/kit"
)

func TestErrorKindStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
		kind Kind
	}{
		{&Error{Kind: KindTransient, Msg: "connection refused"}, codes.Unavailable, KindTransient},
		{&Error{Kind: KindPermanent, Msg: "sbatch: error: invalid partition"}, codes.FailedPrecondition, KindPermanent},
		{&Error{Kind: KindAuth, Msg: "host key SHA256:abc changed"}, codes.PermissionDenied, KindAuth},
		{&Error{Kind: KindNotFound, Msg: "no such job"}, codes.NotFound, KindNotFound},
		{fmt.Errorf("stage calc 42: %w", &Error{Kind: KindAuth, Msg: "denied"}), codes.PermissionDenied, KindAuth},
		{errors.New("no kind"), codes.Unavailable, KindTransient},
		{fmt.Errorf("squeue: %w", context.DeadlineExceeded), codes.DeadlineExceeded, KindTransient},
		{context.Canceled, codes.Canceled, KindTransient},
	} {
		st := toStatus(tc.err)
		if got := status.Code(st); got != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, got, tc.code)
		}
		back := fromStatus(context.Background(), st)
		if KindOf(back) != tc.kind || back.Error() != tc.err.Error() {
			t.Errorf("%v: back as %q of kind %v, want kind %v", tc.err, back, KindOf(back), tc.kind)
		}
	}
	if toStatus(nil) != nil || fromStatus(context.Background(), nil) != nil {
		t.Error("nil did not stay nil")
	}
	// Codes a plugin in another language may send.
	for code, kind := range map[codes.Code]Kind{
		codes.InvalidArgument: KindPermanent, codes.Unauthenticated: KindAuth, codes.Unimplemented: KindPermanent,
		codes.Internal: KindTransient, codes.ResourceExhausted: KindTransient, codes.Unknown: KindTransient,
	} {
		if got := KindOf(fromStatus(context.Background(), status.Error(code, "x"))); got != kind {
			t.Errorf("code %v: kind %v, want %v", code, got, kind)
		}
	}
	// A context error on the host side wins over whatever the transport said.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fromStatus(ctx, status.Error(codes.Internal, "x")); !IsTransient(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
	// Deadline statuses are errors.Is-able even when the host's ctx has not ended yet.
	if err := fromStatus(context.Background(), status.Error(codes.DeadlineExceeded, "x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline status: %v", err)
	}
}

func TestTail(t *testing.T) {
	var tl tail
	for i := range tailLines + 5 {
		fmt.Fprintf(&tl, "line %d\n", i)
	}
	_, _ = tl.Write([]byte("partial"))
	got := tl.String()
	want := ""
	for i := 5; i < tailLines+5; i++ {
		want += fmt.Sprintf("line %d\n", i)
	}
	want += "partial"
	if got != want {
		t.Errorf("tail:\n%s\nwant\n%s", got, want)
	}
	var long tail
	_, _ = long.Write(make([]byte, 3*tailLineMax))
	if n := len(long.String()); n > 2*tailLineMax {
		t.Errorf("a line without newline grew the tail to %d bytes", n)
	}
}

// toStatus is the plugin's side of error passing (package kit).
var toStatus = kit.Status
