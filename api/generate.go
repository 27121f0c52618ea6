package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
	"github.com/kvmesh/kvmesh/model/tokenizer"
)

// kind is the endpoint a generation came in on; it decides the response shapes.
type kind int

const (
	kindCompletion kind = iota // POST /v1/completions
	kindChat                   // POST /v1/chat/completions
)

func (k kind) endpoint() string {
	if k == kindChat {
		return "chat"
	}
	return "completions"
}

// zeroSeed replaces a request's seed 0, as the sampler itself does: the engine wants a
// seed > 0, and "seed": 0 must still be reproducible.
const zeroSeed = sample.DefaultSeed

// handleGenerate serves POST /v1/completions or /v1/chat/completions.
func (s *Server) handleGenerate(k kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if !s.begin() {
			writeError(w, unavailable("the server is shutting down"), s.cfg.RetryAfter)
			return
		}
		defer s.end()
		if !s.cfg.Ready() {
			writeError(w, unavailable("the model is not ready"), s.cfg.RetryAfter)
			return
		}
		g, e := s.parse(k, w, r)
		if e == nil && g.model != "" && g.model != s.cfg.ModelName {
			e = s.unknownModel(g.model)
		}
		var req engine.Request
		if e == nil {
			req, e = s.prepare(g)
		}
		if e != nil {
			addLog(r.Context(), slog.String("error", e.Message))
			writeError(w, e, 0)
			return
		}

		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.abort, cancel)()
		events, err := s.cfg.Generator.Submit(ctx, req)
		if err != nil {
			e, retry := s.submitError(err)
			if e == nil { // the client left before admission
				return
			}
			addLog(r.Context(), slog.String("error", err.Error()))
			writeError(w, e, retry)
			return
		}
		s.m.prompt.Add(float64(len(req.Prompt)))
		run := &run{
			s: s, req: r, kind: k, start: start, cancel: cancel, created: time.Now().Unix(),
			promptLen: len(req.Prompt), samples: make([]sampleState, req.N), running: req.N,
		}
		run.id = newID(k)
		for i := range run.samples {
			run.samples[i] = sampleState{prev: req.Prompt[len(req.Prompt)-1], stop: stopMatcher{stops: g.stop}}
		}
		w.Header().Set("X-Request-Id", run.id)
		if g.stream {
			run.stream(w, events, g.includeUsage)
		} else {
			run.collect(w, events)
		}
		if r.Context().Err() != nil {
			addLog(r.Context(), slog.Bool("client_gone", true))
		}
		finishes := make([]string, len(run.samples))
		for i := range run.samples {
			finishes[i] = run.samples[i].finish
		}
		addLog(r.Context(), slog.String("id", run.id), slog.Int("prompt_tokens", run.promptLen),
			slog.Int("completion_tokens", run.completionTokens()), slog.Int("n", req.N),
			slog.Bool("stream", g.stream), slog.Uint64("seed", req.Sampling.Seed),
			slog.String("finish", strings.Join(finishes, ",")))
	}
}

// parse reads and validates the body of a generation request.
func (s *Server) parse(k kind, w http.ResponseWriter, r *http.Request) (genRequest, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return genRequest{}, newError(http.StatusRequestEntityTooLarge, typeInvalidRequest, "", "",
				"the request body is larger than %d bytes", tooBig.Limit)
		}
		return genRequest{}, invalid("", "cannot read the request body: %v", err)
	}
	lim := limits{maxN: s.cfg.MaxN, maxStops: s.cfg.MaxStops}
	if k == kindCompletion {
		return parseCompletion(body, lim)
	}
	g, msgs, e := parseChat(body, lim)
	if e != nil {
		return g, e
	}
	text, err := s.cfg.ChatTemplate(msgs)
	if err != nil {
		return g, invalid("messages", "cannot render the chat: %v", err)
	}
	g.text = text
	return g, nil
}

// prepare tokenizes g's prompt and checks it against the context: the engine request.
func (s *Server) prepare(g genRequest) (engine.Request, *apiError) {
	ids := g.ids
	if g.idsGiven {
		vocab := s.cfg.Tokenizer.Vocab()
		for i, id := range ids {
			if id < 0 || id >= vocab {
				return engine.Request{}, invalid("prompt", "prompt token %d (at %d) is outside the vocabulary of %d", id, i, vocab)
			}
		}
	} else {
		ids = s.cfg.Tokenizer.Encode(g.text, true, false)
	}
	ctxLen := s.cfg.ContextLen
	if len(ids) > ctxLen {
		return engine.Request{}, newError(http.StatusBadRequest, typeInvalidRequest, "prompt", "context_length_exceeded",
			"the prompt is %d tokens; the model's context is %d", len(ids), ctxLen)
	}
	room := ctxLen + 1 - len(ids) // the last sampled token is never fed back
	maxTokens := g.maxTokens
	switch {
	case maxTokens == 0:
		maxTokens = s.cfg.DefaultMaxTokens
		if maxTokens == 0 || maxTokens > room {
			maxTokens = room
		}
	case maxTokens > room:
		return engine.Request{}, newError(http.StatusBadRequest, typeInvalidRequest, "max_tokens", "context_length_exceeded",
			"max_tokens %d with a prompt of %d tokens passes the model's context of %d: at most %d", maxTokens, len(ids), ctxLen, room)
	}
	seed := g.seed
	if seed == 0 {
		seed = rand.Uint64N(1<<63) + 1 // > 0, and seed+i does not wrap for any n
	}
	p := sample.Params{Temperature: float32(g.temperature), TopP: float32(g.topP), Seed: seed}
	if err := p.Validate(); err != nil {
		return engine.Request{}, invalid("", "%v", err)
	}
	return engine.Request{Prompt: ids, MaxTokens: maxTokens, N: g.n, Sampling: p, StopTokens: s.cfg.StopTokens}, nil
}

// submitError maps an error of Submit to its response and Retry-After; nil when the
// client has left.
func (s *Server) submitError(err error) (*apiError, time.Duration) {
	switch {
	case errors.Is(err, engine.ErrQueueFull):
		return newError(http.StatusTooManyRequests, typeRateLimit, "", "queue_full", "the server is busy; retry later"), s.cfg.RetryAfter
	case errors.Is(err, engine.ErrTooLong):
		return newError(http.StatusBadRequest, typeInvalidRequest, "", "context_length_exceeded", "%v", err), 0
	case errors.Is(err, engine.ErrInvalid):
		return invalid("", "%v", err), 0
	case errors.Is(err, engine.ErrClosed):
		return unavailable("the engine is shutting down"), s.cfg.RetryAfter
	case errors.Is(err, engine.ErrUnavailable), errors.Is(err, engine.ErrPipeline):
		return unavailable("%v; retry later", err), s.cfg.RetryAfter
	case errors.Is(err, context.Canceled):
		return nil, 0
	}
	return newError(http.StatusInternalServerError, typeServer, "", "", "generation failed: %v", err), 0
}

// newID returns a fresh response id: "cmpl-…" or "chatcmpl-…".
func newID(k kind) string {
	prefix := "cmpl-"
	if k == kindChat {
		prefix = "chatcmpl-"
	}
	return fmt.Sprintf("%s%016x%08x", prefix, rand.Uint64(), rand.Uint32())
}

// sampleState is one choice being generated.
type sampleState struct {
	prev   int // the last token, which the next one is decoded after
	stop   stopMatcher
	text   strings.Builder // the whole text, when not streaming
	tokens int             // generated so far, counted in usage
	finish string          // "" while running
	last   time.Time       // when the last token came
}

// run is one admitted generation: the engine's events turned into choices.
type run struct {
	s         *Server
	req       *http.Request
	kind      kind
	id        string
	created   int64
	start     time.Time
	cancel    context.CancelFunc // aborts the engine request
	promptLen int
	samples   []sampleState // (n)
	running   int           // samples without a finish
	gotToken  bool          // the first token has come (TTFT observed)
}

// delta is what one event adds to one choice.
type delta struct {
	index  int
	text   string
	finish string // set on the choice's last delta
}

// apply turns an engine event (not an error) into a delta; ok is false for an event that
// changes nothing visible (a held-back or unprintable piece, or a token after the choice
// has stopped). When every choice has finished it cancels the engine request, whose
// further tokens are not wanted.
func (r *run) apply(ev engine.Event, now time.Time) (d delta, ok bool) {
	if ev.Index < 0 || ev.Index >= len(r.samples) {
		return delta{}, false
	}
	sm := &r.samples[ev.Index]
	if sm.finish != "" {
		return delta{}, false
	}
	d.index = ev.Index
	if ev.Finish != "" {
		d.text, d.finish = sm.stop.flush(), string(ev.Finish)
	} else {
		endpoint := r.kind.endpoint()
		if !r.gotToken {
			r.gotToken = true
			r.s.m.ttft.WithLabelValues(endpoint).Observe(now.Sub(r.start).Seconds())
		}
		if !sm.last.IsZero() {
			r.s.m.tpot.WithLabelValues(endpoint).Observe(now.Sub(sm.last).Seconds())
		}
		sm.last = now
		sm.tokens++
		r.s.m.generated.Inc()
		piece := r.s.cfg.Tokenizer.Decode(sm.prev, ev.Token)
		sm.prev = ev.Token
		if !tokenizer.Printable(piece) {
			return delta{}, false
		}
		var stopped bool
		d.text, stopped = sm.stop.push(piece)
		if stopped {
			d.finish = string(engine.FinishStop)
		}
	}
	if d.finish != "" {
		sm.finish = d.finish
		if r.running--; r.running == 0 {
			r.cancel()
		}
	}
	return d, d.text != "" || d.finish != ""
}

func (r *run) completionTokens() int {
	n := 0
	for i := range r.samples {
		n += r.samples[i].tokens
	}
	return n
}

func (r *run) usage() usage {
	c := r.completionTokens()
	return usage{PromptTokens: r.promptLen, CompletionTokens: c, TotalTokens: r.promptLen + c}
}

// endError is the response to a request whose events ended without every choice
// finishing; nil when the client has left and nothing can be sent.
func (r *run) endError(evErr error) *apiError {
	if evErr != nil {
		addLog(r.req.Context(), slog.String("error", evErr.Error()))
	}
	switch {
	case r.req.Context().Err() != nil:
		return nil
	case r.s.abort.Err() != nil:
		return unavailable("the server shut down before the generation finished")
	case evErr != nil:
		e, _ := r.s.submitError(evErr)
		if e == nil {
			e = newError(http.StatusInternalServerError, typeServer, "", "", "generation aborted: %v", evErr)
		}
		return e
	}
	return newError(http.StatusInternalServerError, typeServer, "", "", "the generation ended early")
}
