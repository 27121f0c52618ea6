package kvindex

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; returned errors wrap them with
// context.
var (
	// ErrBadMessage: bytes on a kvindex subject that are not a valid message of this wire
	// version (truncated, unknown version or type, counts that do not fit, trailing bytes).
	ErrBadMessage = errors.New("kvindex: malformed message")
	// ErrBadConfig: a configuration that the constructor cannot work with.
	ErrBadConfig = errors.New("kvindex: invalid config")
	// ErrClosed: the Publisher or Subscriber was closed.
	ErrClosed = errors.New("kvindex: closed")
	// ErrSnapshot: a snapshot could not be had from a publisher (no answer in time, an
	// incomplete or inconsistent set of parts).
	ErrSnapshot = errors.New("kvindex: snapshot failed")
)
