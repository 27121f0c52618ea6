package model

import "errors"

var (
	// ErrBatch is returned for a batch that the Runner cannot run: too many tokens for its
	// buffers, a token id outside the vocabulary, or positions past the context.
	ErrBatch = errors.New("invalid batch")
	// ErrContext is returned when a sequence would grow past the model's context length.
	ErrContext = errors.New("sequence longer than the model's context")
)
