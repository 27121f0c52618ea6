package loadgen

import (
	"fmt"
	"math"
	"net/url"
	"time"
)

// Config describes one load-generation run. The zero value of a field means its default
// (filled by validate) unless the field says otherwise; DefaultConfig returns the defaults
// with the booleans that default to true set.
type Config struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:8080"; requests go to
	// URL + "/v1/completions". Required.
	URL string
	// Model is the "model" field of each request. Default: the first model the server
	// lists at GET {URL}/v1/models, asked once before the run.
	Model string
	// Rate is the mean arrival rate in requests per second of an open-loop run with
	// Poisson arrivals (exponential inter-arrival times). 0 (default) runs closed loop.
	Rate float64
	// Concurrency is the number of requests in flight: the number of workers of a
	// closed-loop run (0 means 1), or a cap on the requests in flight of an open-loop run
	// (0: no cap; an arrival that finds the cap reached waits for a free slot). Default 0.
	Concurrency int
	// Requests is the number of requests to send. Default 100.
	Requests int
	// Warmup is a number of requests sent one at a time before the measured run and not
	// recorded, e.g. to fill a prefix cache (with shared-prefix prompts, Warmup ≥ Groups
	// warms every group). They use the prompts and seeds that follow the measured ones
	// (indices Requests, Requests+1, ...), so warming up changes no measured request.
	// Default 0.
	Warmup int
	// Duration caps the run: no request starts after it has passed (those in flight run
	// to their end or their Timeout). Default 10 minutes.
	Duration time.Duration
	// Prompts describes the prompt set. Default: DefaultPromptSet().
	Prompts PromptSet
	// MaxTokens is the "max_tokens" of each request. Default 64.
	MaxTokens int
	// MinTokens, when > 0, draws each request's max_tokens uniformly from
	// MinTokens..MaxTokens (seeded by Seed), for a mix of short and long requests.
	// Default 0: every request asks for MaxTokens.
	MinTokens int
	// Temperature is the "temperature" of each request; 0 (default) is greedy decoding.
	Temperature float64
	// IgnoreEOS sends "ignore_eos": true so every request generates MaxTokens tokens
	// (servers without the field ignore it). Default false.
	IgnoreEOS bool
	// Stream asks for a server-sent event stream; without it only E2E is measured.
	// DefaultConfig sets it; the zero Config does not stream.
	Stream bool
	// IncludeUsage sends "stream_options": {"include_usage": true} with streaming
	// requests so the server reports exact token counts. DefaultConfig sets it.
	IncludeUsage bool
	// Seed seeds the prompt set and the arrival process; request i carries sampling seed
	// Seed+i. Default 0 (a valid seed).
	Seed int64
	// Timeout bounds one request, its 429 retries included. Default 2 minutes.
	Timeout time.Duration
	// RetryRejected retries a request answered 429, after its Retry-After header (or
	// RetryBackoff without one). Default false: a 429 fails the request as rejected.
	RetryRejected bool
	// MaxRetries is the most 429 retries of one request when RetryRejected. Default 5.
	MaxRetries int
	// RetryBackoff is the wait before a retry when a 429 has no usable Retry-After
	// header. Default 1 second. A wait that would end past the request's Timeout fails
	// the request as rejected at once.
	RetryBackoff time.Duration
}

// DefaultConfig returns the defaults: closed loop with one worker, 100 streaming requests
// of the default prompt set, 64 tokens each, greedy. URL must still be set.
func DefaultConfig() Config {
	c := Config{Stream: true, IncludeUsage: true}
	if err := c.fill(); err != nil {
		panic(err) // fill of the zero config cannot fail
	}
	return c
}

// fill sets zero fields to their defaults.
func (c *Config) fill() error {
	if c.Requests == 0 {
		c.Requests = 100
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Minute
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = 64
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = time.Second
	}
	return c.Prompts.fill()
}

// validate fills zero fields with their defaults and rejects values out of range.
func (c *Config) validate() error {
	if err := c.fill(); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return bad("URL is required")
	case err != nil:
		return bad("URL %q: %v", c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return bad("URL %q: want http://host:port", c.URL)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return bad("Rate %v: want a finite rate ≥ 0", c.Rate)
	case c.Concurrency < 0:
		return bad("Concurrency %d < 0", c.Concurrency)
	case c.Requests < 0:
		return bad("Requests %d < 0", c.Requests)
	case c.Warmup < 0:
		return bad("Warmup %d < 0", c.Warmup)
	case c.Duration < 0:
		return bad("Duration %v < 0", c.Duration)
	case c.MaxTokens < 0:
		return bad("MaxTokens %d < 0", c.MaxTokens)
	case c.MinTokens < 0 || c.MinTokens > c.MaxTokens:
		return bad("MinTokens %d: want 0 ≤ MinTokens ≤ MaxTokens (%d)", c.MinTokens, c.MaxTokens)
	case c.Temperature < 0 || math.IsNaN(c.Temperature):
		return bad("Temperature %v < 0", c.Temperature)
	case c.Timeout < 0:
		return bad("Timeout %v < 0", c.Timeout)
	case c.MaxRetries < 0:
		return bad("MaxRetries %d < 0", c.MaxRetries)
	case c.RetryBackoff < 0:
		return bad("RetryBackoff %v < 0", c.RetryBackoff)
	}
	return c.Prompts.validate()
}
