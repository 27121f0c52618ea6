package leader

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/api"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/tokenizer"
)

// TestAPIOverClient: the HTTP API with a Client as its Generator (the router's path)
// answers completions equal to the reference, and a refusal of the leader keeps its HTTP
// status: 400 for a prompt longer than the context, 429 for a full queue, 503 for an
// engine shutting down.
func TestAPIOverClient(t *testing.T) {
	n := startNode(t, engine.Config{MaxWaiting: 1}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	tok, err := tokenizer.Load(tokenizerPath, loadModel(t).Config.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.DefaultConfig()
	cfg.Generator, cfg.Tokenizer, cfg.ModelName = c, tok, "stories260K"
	cfg.ContextLen, cfg.Logger = loadModel(t).Config.SeqLen, quiet
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	greedy, _ := loadReference(t)
	for i, rc := range greedy {
		ids, finish := expect(rc)
		var want strings.Builder
		prev := rc.PromptIDs[len(rc.PromptIDs)-1]
		for _, id := range ids {
			if piece := tok.Decode(prev, id); tokenizer.Printable(piece) {
				want.WriteString(piece)
			}
			prev = id
		}
		body := fmt.Sprintf(`{"model":"stories260K","prompt":%q,"max_tokens":%d,"temperature":0}`, rc.Prompt, rc.Steps-len(rc.PromptIDs)+1)
		status, out := post(t, hs.URL+"/v1/completions", body)
		if status != http.StatusOK {
			t.Fatalf("case %d: status %d: %s", i, status, out)
		}
		var resp struct {
			Choices []struct {
				Text         string `json:"text"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(out, &resp); err != nil || len(resp.Choices) != 1 {
			t.Fatalf("case %d: %v: %s", i, err, out)
		}
		if got := resp.Choices[0]; got.Text != want.String() || got.FinishReason != string(finish) {
			t.Errorf("case %d: got %q (%s)\nwant %q (%s)", i, got.Text, got.FinishReason, want.String(), finish)
		}
	}
	short := `{"model":"stories260K","prompt":"Once","max_tokens":2}`
	long := strings.Repeat("Once upon a time ", 200)
	if status, out := post(t, hs.URL+"/v1/completions", fmt.Sprintf(`{"model":"stories260K","prompt":%q,"max_tokens":1}`, long)); status != http.StatusBadRequest {
		t.Errorf("a prompt past the context: status %d: %s", status, out)
	}

	release := n.occupy(t, true)
	if status, out := post(t, hs.URL+"/v1/completions", short); status != http.StatusTooManyRequests {
		t.Errorf("a full queue: status %d: %s", status, out)
	}
	release()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.eng.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if status, out := post(t, hs.URL+"/v1/completions", short); status != http.StatusServiceUnavailable {
		t.Errorf("an engine shutting down: status %d: %s", status, out)
	}
}

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}
