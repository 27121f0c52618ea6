package leader

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kvmesh/kvmesh/engine"
)

// Sentinel errors callers branch on. Besides these, the client's errors wrap the engine's
// sentinels (engine.ErrQueueFull, ErrTooLong, ErrInvalid, ErrClosed) when the leader's
// engine refused or ended a request with one of them.
var (
	// ErrBroken: the connection to the leader broke, or the leader fell silent, before the
	// request ended; what became of the request on the leader is unknown. The router may
	// resume it on another pipeline.
	ErrBroken = errors.New("leader: connection broken")
	// ErrUnreachable: Dial could not reach the leader: nothing listens, the TLS handshake
	// failed (a wrong CA, a missing client certificate), or the peer does not speak gRPC.
	ErrUnreachable = errors.New("leader: unreachable")
	// ErrWrongModel: the leader serves another model than the caller expects.
	ErrWrongModel = errors.New("leader: wrong model")
	// ErrFailed: the generation failed inside the leader's engine (a failed step).
	ErrFailed = errors.New("leader: generation failed")
	// ErrConfig: a Config that cannot be used (missing or unreadable TLS files).
	ErrConfig = errors.New("leader: bad config")
)

// errorDomain is the ErrorInfo domain of the errors the Leader service reports.
const errorDomain = "kvmesh.io"

// reasons maps each error a leader reports to its ErrorInfo reason and gRPC code; the
// client maps a reason back to the same sentinel.
var reasons = []struct {
	err    error
	reason string
	code   codes.Code
}{
	{engine.ErrQueueFull, "QUEUE_FULL", codes.ResourceExhausted},
	{engine.ErrTooLong, "TOO_LONG", codes.InvalidArgument},
	{engine.ErrInvalid, "INVALID", codes.InvalidArgument},
	{engine.ErrClosed, "CLOSED", codes.Unavailable},
	{ErrWrongModel, "WRONG_MODEL", codes.FailedPrecondition},
}

// toStatus turns an error of the engine into the status a Generate stream ends with.
func toStatus(err error) error {
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	reason, code := "FAILED", codes.Internal
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			reason, code = r.reason, r.code
			break
		}
	}
	st, derr := status.New(code, err.Error()).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain})
	if derr != nil {
		panic(fmt.Sprintf("leader: status details: %v", derr)) // ErrorInfo always marshals
	}
	return st.Err()
}

// remoteError is an error a leader reported: its message, and the sentinel it maps to.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// fromStatus turns the error of a call to addr back into what the caller branches on: the
// sentinel of a reported error, ctx's error when the caller gave up, ErrBroken otherwise.
func fromStatus(ctx context.Context, addr string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("leader %s: request cancelled: %w", addr, context.Cause(ctx))
	}
	if info := errorInfo(err); info != nil {
		kind := ErrFailed
		for _, r := range reasons {
			if r.reason == info.Reason {
				kind = r.err
			}
		}
		return fmt.Errorf("leader %s: %w", addr, &remoteError{msg: status.Convert(err).Message(), kind: kind})
	}
	return fmt.Errorf("leader %s: %w: %v", addr, ErrBroken, err)
}

// reported reports whether err is an error the leader reported, not the transport's.
func reported(err error) bool { return errorInfo(err) != nil }

// errorInfo returns the ErrorInfo of the leader's domain in err's status, or nil.
func errorInfo(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == errorDomain {
			return info
		}
	}
	return nil
}
