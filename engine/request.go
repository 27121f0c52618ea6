package engine

import (
	"errors"

	"github.com/kvmesh/kvmesh/model/sample"
)

// Sentinel errors callers branch on.
var (
	// ErrQueueFull: the waiting queue is at its limit; retry later (HTTP 429).
	ErrQueueFull = errors.New("engine: queue full")
	// ErrTooLong: the prompt, or prompt plus max tokens, does not fit the context.
	ErrTooLong = errors.New("engine: request longer than the context")
	// ErrInvalid: a request the engine cannot run (empty prompt, bad ids, bad sampling).
	ErrInvalid = errors.New("engine: invalid request")
	// ErrClosed: the engine is shutting down and takes no new requests.
	ErrClosed = errors.New("engine: closed")
	// ErrUnavailable: nothing can serve the request now (in a cluster: no pipeline is
	// serving); retry later (HTTP 503).
	ErrUnavailable = errors.New("engine: unavailable")
)

// Request is one generation: a prompt of token ids and how to continue it.
type Request struct {
	// Prompt is the token ids to continue, BOS included where the model expects one.
	Prompt []int
	// MaxTokens is the most tokens to generate per sample (at least 1).
	MaxTokens int
	// N is the number of samples of the same prompt (default 1); they share the prompt's
	// KV blocks. Sample i uses seed Sampling.Seed+i.
	N int
	// Sampling is temperature, top-p and seed.
	Sampling sample.Params
	// StopTokens ends a sample when it generates one of these ids (not emitted).
	StopTokens []int
	// Priority orders waiting requests under the priority policy: higher runs first.
	Priority int
	// Resumed is how many tokens at the end of Prompt an earlier run of this same request
	// already generated (a request resumed after a failure elsewhere). They count against
	// MaxTokens, sampling continues their sequence of random draws, and only the tokens
	// after them are emitted, so the output equals an uninterrupted run. With N > 1 it
	// applies to every sample alike (resume each sample as its own request instead).
	Resumed int
}

// FinishReason says why a sample ended.
type FinishReason string

const (
	FinishLength FinishReason = "length" // MaxTokens reached, or the context is full
	FinishStop   FinishReason = "stop"   // a stop token was generated
)

// Event is one thing that happened to a request: a generated token of sample Index, or the
// end of sample Index (Finish set), or a failure of the whole request (Err set, last event).
type Event struct {
	Index  int
	Token  int
	Finish FinishReason
	Err    error
}
