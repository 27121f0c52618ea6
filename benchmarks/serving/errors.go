package serving

import "errors"

// Sentinel errors callers branch on.
var (
	// ErrConfig: a benchmark configuration the model cannot run (a prompt longer than the
	// context, memory below one full-context sequence, ...).
	ErrConfig = errors.New("serving: bad benchmark configuration")
	// ErrRequest: the engine ended a benchmark request with an error.
	ErrRequest = errors.New("serving: a request failed")
)
