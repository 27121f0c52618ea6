package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves the OpenAI-compatible API over one Generator. Its handlers are safe for
// concurrent use.
type Server struct {
	cfg     Config
	m       *metrics
	handler http.Handler
	created int64 // Unix seconds: the model card's "created", when the server was made

	abort   context.Context    // cancelled when a drain runs out of time: aborts generations
	abortFn context.CancelFunc // cancels abort

	mu       sync.Mutex    // protects active, draining and idle
	active   int           // generation requests being served
	draining bool          // Drain was called: new generations get 503
	idle     chan struct{} // closed once draining and active == 0
}

// New returns a Server for cfg, registering its metrics in cfg.Registry.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}
	s := &Server{cfg: cfg, m: m, created: time.Now().Unix(), idle: make(chan struct{})}
	s.abort, s.abortFn = context.WithCancel(context.Background())

	mux := http.NewServeMux()
	s.route(mux, "POST /v1/completions", "completions", s.handleGenerate(kindCompletion))
	s.route(mux, "POST /v1/chat/completions", "chat", s.handleGenerate(kindChat))
	s.route(mux, "GET /v1/models", "models", s.handleModels)
	s.route(mux, "GET /v1/models/{id}", "model", s.handleModel)
	s.route(mux, "GET /healthz", "healthz", s.handleHealth)
	s.route(mux, "GET /readyz", "readyz", s.handleReady)
	s.route(mux, "GET /metrics", "metrics",
		promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)}).ServeHTTP)
	for path, allow := range map[string]string{
		"/v1/completions": "POST", "/v1/chat/completions": "POST", "/v1/models": "GET",
		"/healthz": "GET", "/readyz": "GET", "/metrics": "GET",
	} {
		s.route(mux, path, "other", methodNotAllowed(allow))
	}
	s.route(mux, "/", "other", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newError(http.StatusNotFound, typeNotFound, "", "unknown_url", "no such endpoint: %s %s", r.Method, r.URL.Path), 0)
	})
	s.handler = mux
	return s, nil
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

// route registers h under pattern, counted and logged as endpoint.
func (s *Server) route(mux *http.ServeMux, pattern, endpoint string, h http.HandlerFunc) {
	quiet := endpoint == "healthz" || endpoint == "readyz" || endpoint == "metrics"
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		info := &logInfo{}
		h(rec, r.WithContext(context.WithValue(r.Context(), logInfoKey{}, info)))
		code := rec.status
		if code == 0 {
			code = 499 // the client left before a response was written (nginx's code)
		}
		dur := time.Since(start)
		s.m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
		if !quiet {
			s.m.duration.WithLabelValues(endpoint).Observe(dur.Seconds())
		}
		level := slog.LevelInfo
		if quiet {
			level = slog.LevelDebug
		}
		attrs := append([]slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", code), slog.Duration("duration", dur),
			slog.String("remote", r.RemoteAddr),
		}, info.attrs...)
		s.cfg.Logger.LogAttrs(r.Context(), level, "http request", attrs...)
	})
}

// logInfo collects what a handler adds to its request's log line.
type logInfo struct{ attrs []slog.Attr }

type logInfoKey struct{}

// addLog adds attrs to the log line of the request of ctx.
func addLog(ctx context.Context, attrs ...slog.Attr) {
	if info, ok := ctx.Value(logInfoKey{}).(*logInfo); ok {
		info.attrs = append(info.attrs, attrs...)
	}
}

// recorder remembers the status written through it; Unwrap lets http.ResponseController
// reach the connection's Flush.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, newError(http.StatusMethodNotAllowed, typeInvalidRequest, "", "method_not_allowed",
			"%s %s: use %s", r.Method, r.URL.Path, allow), 0)
	}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, modelList{Object: "list", Data: []modelCard{s.card()}})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != s.cfg.ModelName {
		writeError(w, s.unknownModel(id), 0)
		return
	}
	writeJSON(w, http.StatusOK, s.card())
}

func (s *Server) card() modelCard {
	return modelCard{ID: s.cfg.ModelName, Object: "model", Created: s.created, OwnedBy: "kvmesh", MaxModelLen: s.cfg.ContextLen}
}

func (s *Server) unknownModel(id string) *apiError {
	return newError(http.StatusNotFound, typeInvalidRequest, "model", "model_not_found",
		"the model %q does not exist; this server serves %q", id, s.cfg.ModelName)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.isDraining():
		writeError(w, unavailable("draining"), s.cfg.RetryAfter)
	case !s.cfg.Ready():
		writeError(w, unavailable("the model is not ready"), s.cfg.RetryAfter)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

func unavailable(format string, args ...any) *apiError {
	return newError(http.StatusServiceUnavailable, typeUnavailable, "", "", format, args...)
}

// begin admits a generation request unless the server is draining; end must follow.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.active++
	s.m.inFlight.Inc()
	return true
}

func (s *Server) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	s.m.inFlight.Dec()
	if s.draining && s.active == 0 {
		s.closeIdleLocked()
	}
}

func (s *Server) closeIdleLocked() {
	select {
	case <-s.idle:
	default:
		close(s.idle)
	}
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// Drain stops taking generations (they get 503, and /readyz turns 503) and waits until
// the running ones have finished. If ctx ends first, it aborts them (their KV blocks are
// freed, streams end) and returns an error wrapping ErrDraining and ctx.Err(). Drain may
// be called more than once; the server stays draining.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	if s.active == 0 {
		s.closeIdleLocked()
	}
	s.mu.Unlock()
	select {
	case <-s.idle:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		n := s.active
		s.mu.Unlock()
		s.abortFn()
		return fmt.Errorf("%w: aborted %d running requests: %w", ErrDraining, n, ctx.Err())
	}
}

// Shutdown drains the server (see Drain), then shuts hs down gracefully; if ctx ends
// during the drain, hs is closed at once instead.
func (s *Server) Shutdown(ctx context.Context, hs *http.Server) error {
	if err := s.Drain(ctx); err != nil {
		return errors.Join(err, hs.Close())
	}
	return hs.Shutdown(ctx)
}

// Serve serves s's handler on ln until ctx ends, then shuts down gracefully: it drains
// for up to grace (see Shutdown) and returns nil, or the error that stopped serving.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	s.cfg.Logger.Info("draining", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := s.Shutdown(sctx, hs)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("api: cannot encode a response: %v", err)) // our own types always encode
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError sends e as an OpenAI-style error body, with Retry-After if retry > 0.
func writeError(w http.ResponseWriter, e *apiError, retry time.Duration) {
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	}
	writeJSON(w, e.status, errorBody{Error: e})
}
