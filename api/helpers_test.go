package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/tokenizer"
)

// Paths of the shipped model files, relative to this package.
const (
	modelPath     = "../models/stories260K.bin"
	tokenizerPath = "../models/tok512.bin"
	vocab         = 512
)

func loadTokenizer(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(tokenizerPath, vocab)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unreachable is the Generator of tests whose requests must be turned away before
// generation: it generates nothing and fails the test if a request gets to it. It does
// not stand in for the engine; tests that generate use the real one (e2e_test.go).
type unreachable struct{ t testing.TB }

func (u unreachable) Submit(context.Context, engine.Request) (<-chan engine.Event, error) {
	u.t.Errorf("a request reached the engine")
	return nil, engine.ErrClosed
}

// newGuardedServer returns a Server over unreachable with the shipped tokenizer and a
// context of ctxLen tokens.
func newGuardedServer(t testing.TB, ctxLen int, edit func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Generator = unreachable{t}
	cfg.Tokenizer = loadTokenizer(t)
	cfg.ModelName = "stories260K"
	cfg.ContextLen = ctxLen
	cfg.Logger = slog.New(slog.DiscardHandler)
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends one request to h and returns the recorded response.
func do(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// decodeError parses an OpenAI-style error body, failing the test if it is not one.
func decodeError(t testing.TB, rec *httptest.ResponseRecorder) *apiError {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error content type %q, body %s", ct, rec.Body)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, rec.Body)
	}
	e, ok := raw["error"]
	if !ok || len(raw) != 1 {
		t.Fatalf("error body has no single \"error\" object: %s", rec.Body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e[k]; !ok {
			t.Fatalf("error body lacks %q: %s", k, rec.Body)
		}
	}
	var body errorBody
	json.Unmarshal(rec.Body.Bytes(), &body)
	if body.Error.Message == "" || body.Error.Type == "" {
		t.Fatalf("error body with empty message or type: %s", rec.Body)
	}
	return body.Error
}
