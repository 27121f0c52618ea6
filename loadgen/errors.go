package loadgen

import (
	"context"
	"errors"
)

// Sentinel errors callers branch on. Errors of a request are wrapped with context; its
// Record keeps the message and the kind (ErrorKind).
var (
	// ErrConfig: a Config field is out of range; the message names the field.
	ErrConfig = errors.New("loadgen: invalid config")
	// ErrRejected: the server answered 429 Too Many Requests and no retry was left.
	ErrRejected = errors.New("loadgen: rejected (429)")
	// ErrStatus: the server answered with another non-2xx status.
	ErrStatus = errors.New("loadgen: http status")
	// ErrStream: the response body was not the expected JSON or event stream, or the
	// stream ended without its [DONE] terminator, or it carried an error object.
	ErrStream = errors.New("loadgen: malformed response")
	// ErrTimeout: the request did not finish within Config.Timeout.
	ErrTimeout = errors.New("loadgen: request timed out")
)

// Error kinds as counted in Summary.Errors.
const (
	KindRejected  = "rejected"
	KindStatus    = "status"
	KindStream    = "stream"
	KindTimeout   = "timeout"
	KindCanceled  = "canceled"
	KindTransport = "transport"
)

// ErrorKind classifies a request error for Summary.Errors: one of the Kind constants, or
// "" for nil.
func ErrorKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRejected):
		return KindRejected
	case errors.Is(err, ErrStatus):
		return KindStatus
	case errors.Is(err, ErrStream):
		return KindStream
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	default:
		return KindTransport
	}
}
