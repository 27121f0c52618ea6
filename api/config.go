package api

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/tokenizer"
	"github.com/prometheus/client_golang/prometheus"
)

// Generator runs generations: the engine of one pipeline (engine.Engine) or, in the
// distributed router, whatever forwards requests to one. Submit returns the request's
// events until the channel closes; cancelling ctx aborts the request and frees its KV
// blocks, and the channel still closes. Submit's errors wrap engine.ErrQueueFull,
// engine.ErrTooLong, engine.ErrInvalid or engine.ErrClosed where they apply.
type Generator interface {
	Submit(ctx context.Context, req engine.Request) (<-chan engine.Event, error)
}

// Tokenizer turns text into token ids and ids back into text, as model/tokenizer does.
// It must be safe for concurrent use.
type Tokenizer interface {
	// Encode returns text's ids, BOS first if bos, EOS last if eos.
	Encode(text string, bos, eos bool) []int
	// Decode returns the text of tok following prev; print it only if
	// tokenizer.Printable.
	Decode(prev, tok int) string
	// Vocab is the number of token ids.
	Vocab() int
}

var _ Tokenizer = (*tokenizer.Tokenizer)(nil)

// Config configures a Server. Fields marked required have no default.
type Config struct {
	// Generator runs the generations. Required.
	Generator Generator
	// Tokenizer encodes prompts and decodes generated tokens. Required.
	Tokenizer Tokenizer
	// ModelName is the id the model is served as (GET /v1/models, the "model" field of
	// requests and responses). Required; ModelName(path) gives the usual one.
	ModelName string
	// ContextLen is the model's context in tokens (its seq_len). Required. A prompt may
	// have at most ContextLen tokens and prompt plus max_tokens at most ContextLen+1: the
	// last generated token is sampled but never fed back, as in llama2.c's run.
	ContextLen int
	// StopTokens end a sample with finish_reason "stop" and are not part of the text.
	// Default: BOS, which ends a story in the llama2.c models.
	StopTokens []int
	// Ready reports whether the model is loaded and generations can be taken (GET
	// /readyz). It is called concurrently from handlers and must not block. Default:
	// always ready.
	Ready func() bool
	// Registry receives the HTTP-level metrics and is served on GET /metrics.
	// Default: a new registry of its own.
	Registry *prometheus.Registry
	// Logger logs one line per request. Default: slog.Default().
	Logger *slog.Logger
	// ChatTemplate renders chat messages into the prompt text; it is called concurrently
	// and its error is sent to the client as a 400. Default: PlainTemplate.
	ChatTemplate func([]Message) (string, error)
	// MaxBodyBytes bounds a request body in bytes; larger bodies get 413. Default: 1 MiB.
	MaxBodyBytes int64
	// MaxN bounds n, the samples of one request. Default: 16.
	MaxN int
	// MaxStops bounds the stop strings of one request (OpenAI allows 4). Default: 4.
	MaxStops int
	// DefaultMaxTokens is max_tokens when a request gives none; 0 means the rest of the
	// context (ContextLen+1 minus the prompt), as llama2.c's run with steps = seq_len.
	// Default: 0.
	DefaultMaxTokens int
	// RetryAfter is the Retry-After sent with 429 (queue full) and 503 (draining, not
	// ready), rounded up to whole seconds. Default: 1s.
	RetryAfter time.Duration
}

// DefaultConfig returns a Config with every defaulted field set; the required fields are
// left for the caller.
func DefaultConfig() Config {
	return Config{
		StopTokens:   []int{tokenizer.BOS},
		Ready:        func() bool { return true },
		Logger:       slog.Default(),
		ChatTemplate: PlainTemplate,
		MaxBodyBytes: 1 << 20,
		MaxN:         16,
		MaxStops:     4,
		RetryAfter:   time.Second,
	}
}

// validate fills zero fields with their defaults and rejects unusable ones.
func (c *Config) validate() error {
	d := DefaultConfig()
	switch {
	case c.Generator == nil:
		return fmt.Errorf("%w: no Generator", ErrConfig)
	case c.Tokenizer == nil:
		return fmt.Errorf("%w: no Tokenizer", ErrConfig)
	case c.ModelName == "":
		return fmt.Errorf("%w: no ModelName", ErrConfig)
	case c.ContextLen <= 0:
		return fmt.Errorf("%w: ContextLen %d must be positive", ErrConfig, c.ContextLen)
	case c.MaxBodyBytes < 0 || c.MaxN < 0 || c.MaxStops < 0 || c.DefaultMaxTokens < 0 || c.RetryAfter < 0:
		return fmt.Errorf("%w: negative limit", ErrConfig)
	}
	if c.StopTokens == nil {
		c.StopTokens = d.StopTokens
	}
	for _, t := range c.StopTokens {
		if t < 0 || t >= c.Tokenizer.Vocab() {
			return fmt.Errorf("%w: stop token %d outside the vocabulary of %d", ErrConfig, t, c.Tokenizer.Vocab())
		}
	}
	if c.Ready == nil {
		c.Ready = d.Ready
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.ChatTemplate == nil {
		c.ChatTemplate = d.ChatTemplate
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxN == 0 {
		c.MaxN = d.MaxN
	}
	if c.MaxStops == 0 {
		c.MaxStops = d.MaxStops
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = d.RetryAfter
	}
	return nil
}

// ModelName is the id a checkpoint is served as by default: its file name without the
// extension ("models/stories260K.bin" → "stories260K").
func ModelName(checkpointPath string) string {
	base := filepath.Base(checkpointPath)
	return strings.TrimSuffix(base, filepath.Ext(base))
}
