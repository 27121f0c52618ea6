package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvmesh/kvmesh/engine"
)

func TestEndpoints(t *testing.T) {
	var ready atomic.Bool
	s := newGuardedServer(t, 32, func(c *Config) { c.Ready = ready.Load })
	h := s.Handler()
	cases := []struct {
		method, path string
		status       int
		body         string // a substring of the body
	}{
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/readyz", 503, "not ready"},
		{"GET", "/v1/models", 200, `"id":"stories260K"`},
		{"GET", "/v1/models/stories260K", 200, `"object":"model"`},
		{"GET", "/v1/models/gpt-4", 404, "model_not_found"},
		{"GET", "/v1/nothing", 404, "no such endpoint"},
		{"GET", "/v1/completions", 405, "use POST"},
		{"DELETE", "/v1/chat/completions", 405, "use POST"},
		{"POST", "/v1/models", 405, "use GET"},
		{"POST", "/v1/completions", 503, "not ready"}, // before the body is read
		{"GET", "/metrics", 200, "kvmesh_http_requests_total"},
	}
	for _, c := range cases {
		rec := do(h, c.method, c.path, `{"prompt":"a"}`)
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s %s: %d %s; want %d with %q", c.method, c.path, rec.Code, rec.Body, c.status, c.body)
		}
		if c.status >= 400 {
			decodeError(t, rec)
		}
		if c.status == 503 && rec.Header().Get("Retry-After") != "1" {
			t.Errorf("%s %s: Retry-After %q", c.method, c.path, rec.Header().Get("Retry-After"))
		}
		if c.status == 405 && rec.Header().Get("Allow") == "" {
			t.Errorf("%s %s: no Allow header", c.method, c.path)
		}
	}
	ready.Store(true)
	if rec := do(h, "GET", "/readyz", ""); rec.Code != 200 {
		t.Errorf("readyz when ready: %d %s", rec.Code, rec.Body)
	}
	var list modelList
	if err := json.Unmarshal(do(h, "GET", "/v1/models", "").Body.Bytes(), &list); err != nil ||
		list.Object != "list" || len(list.Data) != 1 || list.Data[0].OwnedBy == "" || list.Data[0].MaxModelLen != 32 {
		t.Errorf("model list %+v, %v", list, err)
	}
	metrics := do(h, "GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`kvmesh_http_requests_total{code="405",endpoint="other"} 3`,
		`kvmesh_http_requests_total{code="503",endpoint="completions"} 1`,
		`kvmesh_http_generations_in_flight 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestDrainIdle(t *testing.T) {
	s := newGuardedServer(t, 32, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatalf("drain with nothing running: %v", err)
	}
	if err := s.Drain(ctx); err != nil {
		t.Fatalf("second drain: %v", err)
	}
	h := s.Handler()
	for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
		rec := do(h, "POST", path, `{"prompt":"a","messages":[{"role":"user","content":"a"}]}`)
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s while draining: %d %s", path, rec.Code, rec.Body)
		}
		decodeError(t, rec)
	}
	if rec := do(h, "GET", "/readyz", ""); rec.Code != 503 || !strings.Contains(rec.Body.String(), "draining") {
		t.Errorf("readyz while draining: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "GET", "/healthz", ""); rec.Code != 200 {
		t.Errorf("healthz while draining: %d", rec.Code)
	}
}

func TestDrainTimesOut(t *testing.T) {
	s := newGuardedServer(t, 32, nil)
	if !s.begin() { // a generation that will not finish by itself
		t.Fatal("begin refused")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := s.Drain(ctx)
	if !errors.Is(err, ErrDraining) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("drain: %v", err)
	}
	if s.abort.Err() == nil {
		t.Error("running generations not aborted")
	}
	s.end()
	select {
	case <-s.idle:
	default:
		t.Error("idle not signalled after the last request ended")
	}
}

func TestConfigValidate(t *testing.T) {
	tok := loadTokenizer(t)
	base := func() Config {
		c := DefaultConfig()
		c.Generator, c.Tokenizer, c.ModelName, c.ContextLen = unreachable{t}, tok, "m", 256
		return c
	}
	bad := map[string]func(*Config){
		"no generator":        func(c *Config) { c.Generator = nil },
		"no tokenizer":        func(c *Config) { c.Tokenizer = nil },
		"no model name":       func(c *Config) { c.ModelName = "" },
		"no context":          func(c *Config) { c.ContextLen = 0 },
		"negative n":          func(c *Config) { c.MaxN = -1 },
		"stop token too big":  func(c *Config) { c.StopTokens = []int{512} },
		"negative body limit": func(c *Config) { c.MaxBodyBytes = -1 },
	}
	for name, edit := range bad {
		c := base()
		edit(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	c := Config{Generator: unreachable{t}, Tokenizer: tok, ModelName: "m", ContextLen: 256}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.MaxN != 16 || c.MaxStops != 4 || c.MaxBodyBytes != 1<<20 || c.RetryAfter != time.Second ||
		c.Registry == nil || c.Logger == nil || c.ChatTemplate == nil || c.Ready == nil || len(c.StopTokens) != 1 {
		t.Errorf("defaults not filled: %+v", c)
	}
	// Two servers cannot share a registry (their series would collide).
	reg := prometheus.NewRegistry()
	c1, c2 := base(), base()
	c1.Registry, c2.Registry = reg, reg
	if _, err := New(c1); err != nil {
		t.Fatal(err)
	}
	if _, err := New(c2); err == nil {
		t.Error("a second server registered the same metrics")
	}
}

func TestModelName(t *testing.T) {
	for in, want := range map[string]string{
		"models/stories260K.bin": "stories260K",
		"/x/y/llama-7b.q8.bin":   "llama-7b.q8",
		"plain":                  "plain",
	} {
		if got := ModelName(in); got != want {
			t.Errorf("ModelName(%q) = %q, want %q", in, got, want)
		}
	}
}

// The recorder must pass Flush through, or streams would sit in buffers.
func TestRecorderFlushes(t *testing.T) {
	var w http.ResponseWriter = &recorder{ResponseWriter: nopFlusher{}}
	if err := http.NewResponseController(w).Flush(); err != nil {
		t.Fatal(err)
	}
}

type nopFlusher struct{ http.ResponseWriter }

func (nopFlusher) Flush() {}

func TestServe(t *testing.T) {
	s := newGuardedServer(t, 32, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, time.Second) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !s.isDraining() {
		t.Error("not draining after Serve returned")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still listening after Serve returned")
	}
}

// TestSubmitErrorStatus: every error a generator returns maps to its status; the ones a
// client cures by retrying carry Retry-After.
func TestSubmitErrorStatus(t *testing.T) {
	s := newGuardedServer(t, 256, nil)
	for _, tt := range []struct {
		err    error
		status int
		retry  bool
	}{
		{fmt.Errorf("x: %w", engine.ErrQueueFull), 429, true},
		{fmt.Errorf("x: %w", engine.ErrTooLong), 400, false},
		{fmt.Errorf("x: %w", engine.ErrInvalid), 400, false},
		{fmt.Errorf("x: %w", engine.ErrClosed), 503, true},
		{fmt.Errorf("router: no pipeline is serving: %w", engine.ErrUnavailable), 503, true},
		{fmt.Errorf("%w: stage died", engine.ErrPipeline), 503, true},
		{errors.New("disk on fire"), 500, false},
	} {
		e, retry := s.submitError(tt.err)
		if e == nil || e.status != tt.status || (retry > 0) != tt.retry {
			t.Errorf("submitError(%v) = %+v, retry %v; want %d, retry %v", tt.err, e, retry, tt.status, tt.retry)
		}
	}
}
