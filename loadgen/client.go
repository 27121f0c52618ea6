package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// completionRequest is the body of POST /v1/completions.
type completionRequest struct {
	Model         string         `json:"model"`
	Prompt        string         `json:"prompt"`
	MaxTokens     int            `json:"max_tokens"`
	Temperature   float64        `json:"temperature"`
	Seed          int64          `json:"seed"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
	IgnoreEOS     bool           `json:"ignore_eos,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// completion is a non-streaming response body or one streamed chunk.
type completion struct {
	Choices []struct {
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

// client sends the requests of one run and times their bytes.
type client struct {
	cfg   Config
	url   string // cfg.URL + "/v1/completions"
	http  *http.Client
	start time.Time // the start of the run: Record times are offsets from it; set before the run's requests
}

func newClient(cfg Config, start time.Time) *client {
	conns := max(cfg.Concurrency, 64)
	tr := &http.Transport{
		Proxy:               nil, // load goes straight to the server under test
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // a gzip reader would hold bytes back from the clock
	}
	return &client{
		cfg:   cfg,
		url:   strings.TrimSuffix(cfg.URL, "/") + "/v1/completions",
		http:  &http.Client{Transport: tr},
		start: start,
	}
}

func (c *client) close() { c.http.CloseIdleConnections() }

func (c *client) since() time.Duration { return time.Since(c.start) }

// do sends request rec.Index with prompt p and rec.MaxTokens until it succeeds, fails, or exhausts its 429
// retries, filling rec. ctx cancels it; cfg.Timeout bounds it.
func (c *client) do(ctx context.Context, p Prompt, rec *Record) {
	rec.Group, rec.PromptWords = p.Group, p.Words
	req := completionRequest{
		Model:       c.cfg.Model,
		Prompt:      p.Text,
		MaxTokens:   rec.MaxTokens,
		Temperature: c.cfg.Temperature,
		Seed:        c.cfg.Seed + int64(rec.Index),
		Stream:      c.cfg.Stream,
		IgnoreEOS:   c.cfg.IgnoreEOS,
	}
	if c.cfg.Stream && c.cfg.IncludeUsage {
		req.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	body, err := json.Marshal(req)
	if err != nil {
		panic(err) // the request type always marshals
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rec.Start = c.since()
	err = c.attempts(rctx, body, rec)
	if err == nil {
		return
	}
	// Name the cause by the contexts, not by the error text of whatever layer noticed.
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	case rctx.Err() != nil && !errors.Is(err, ErrTimeout):
		err = fmt.Errorf("%w after %v: %w", ErrTimeout, c.cfg.Timeout, err)
	}
	rec.fail(fmt.Errorf("request %d: %w", rec.Index, err), c.since())
}

// attempts sends body, retrying 429 answers as configured.
func (c *client) attempts(ctx context.Context, body []byte, rec *Record) error {
	for attempt := 0; ; attempt++ {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("build request: %w", err)
		}
		hreq.Header.Set("Content-Type", "application/json")
		if c.cfg.Stream {
			hreq.Header.Set("Accept", "text/event-stream")
		}
		resp, err := c.http.Do(hreq)
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		rec.Status = resp.StatusCode
		if resp.StatusCode == http.StatusTooManyRequests {
			rec.Rejections++
			wait := retryAfter(resp.Header.Get("Retry-After"), time.Now(), c.cfg.RetryBackoff)
			discard(resp.Body)
			if !c.cfg.RetryRejected || attempt >= c.cfg.MaxRetries {
				return fmt.Errorf("%w after %d attempts", ErrRejected, attempt+1)
			}
			if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
				return fmt.Errorf("%w: Retry-After %v is past the request's timeout", ErrRejected, wait)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w while waiting %v to retry a 429", ErrTimeout, wait)
			case <-t.C:
			}
			continue
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("%w %d: %s", ErrStatus, resp.StatusCode, bytes.TrimSpace(msg))
		}
		if c.cfg.Stream {
			return c.readStream(resp.Body, rec)
		}
		return c.readBody(resp.Body, rec)
	}
}

// readStream reads an event stream of completion chunks to its end, stamping each token
// with the time of the read that completed its event.
func (c *client) readStream(body io.Reader, rec *Record) error {
	var (
		p     sseParser
		text  strings.Builder
		done  bool
		usage bool
		buf   = make([]byte, 16<<10)
	)
	for {
		n, rerr := body.Read(buf)
		now := c.since()
		if n > 0 && rec.FirstByte == 0 {
			rec.FirstByte = now
		}
		err := p.feed(buf[:n], func(data []byte) error {
			if done {
				return nil // nothing counts after [DONE]
			}
			if string(data) == "[DONE]" {
				done = true
				rec.End = now
				return nil
			}
			var ch completion
			if err := json.Unmarshal(data, &ch); err != nil {
				return fmt.Errorf("%w: chunk %.80q: %w", ErrStream, data, err)
			}
			if ch.Error != nil {
				return fmt.Errorf("%w: server error in stream: %s (%s)", ErrStream, ch.Error.Message, ch.Error.Type)
			}
			if ch.Usage != nil {
				usage = true
				rec.PromptTokens, rec.OutputTokens = ch.Usage.PromptTokens, ch.Usage.CompletionTokens
			}
			if len(ch.Choices) > 0 {
				ck := ch.Choices[0]
				if ck.Text != "" || ck.FinishReason == nil {
					rec.TokenTimes = append(rec.TokenTimes, now)
					text.WriteString(ck.Text)
				}
				if ck.FinishReason != nil {
					rec.FinishReason = *ck.FinishReason
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if rerr == io.EOF || (rerr != nil && done) {
			break // after [DONE] the response is complete; a later read error costs nothing
		}
		if rerr != nil {
			return fmt.Errorf("read stream: %w", rerr)
		}
	}
	if !done {
		return fmt.Errorf("%w: stream ended without [DONE]", ErrStream)
	}
	if !usage {
		rec.OutputTokens = len(rec.TokenTimes)
	}
	rec.Text = text.String()
	return nil
}

// readBody reads a non-streaming completion.
func (c *client) readBody(body io.Reader, rec *Record) error {
	var all bytes.Buffer
	buf := make([]byte, 16<<10)
	for {
		n, err := body.Read(buf)
		now := c.since()
		if n > 0 && rec.FirstByte == 0 {
			rec.FirstByte = now
		}
		all.Write(buf[:n])
		if err == io.EOF {
			rec.End = now
			break
		}
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
	}
	var cp completion
	if err := json.Unmarshal(all.Bytes(), &cp); err != nil {
		return fmt.Errorf("%w: body %.80q: %w", ErrStream, all.Bytes(), err)
	}
	if cp.Error != nil {
		return fmt.Errorf("%w: server error: %s (%s)", ErrStream, cp.Error.Message, cp.Error.Type)
	}
	if len(cp.Choices) == 0 {
		return fmt.Errorf("%w: no choices in body", ErrStream)
	}
	rec.Text = cp.Choices[0].Text
	if fr := cp.Choices[0].FinishReason; fr != nil {
		rec.FinishReason = *fr
	}
	if cp.Usage != nil {
		rec.PromptTokens, rec.OutputTokens = cp.Usage.PromptTokens, cp.Usage.CompletionTokens
	}
	return nil
}

// listedModel asks the server for its models (GET /v1/models) and returns the first id.
func (c *client) listedModel(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := strings.TrimSuffix(c.cfg.URL, "/") + "/v1/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("loadgen: list models: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("loadgen: list models: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("loadgen: list models: %w %d", ErrStatus, resp.StatusCode)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&list); err != nil {
		return "", fmt.Errorf("loadgen: list models: %w: %w", ErrStream, err)
	}
	if len(list.Data) == 0 || list.Data[0].ID == "" {
		return "", fmt.Errorf("loadgen: list models: %w: the server lists no model", ErrStream)
	}
	return list.Data[0].ID, nil
}

// retryAfter is the wait a Retry-After header asks for (delay-seconds, fractional
// seconds, or an HTTP date), or def without a usable header.
func retryAfter(h string, now time.Time, def time.Duration) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return def
	}
	if s, err := strconv.ParseFloat(h, 64); err == nil && s >= 0 && s < 1e6 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return def
}

// discard drains a little of body, so its connection can be reused, and closes it.
func discard(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}
