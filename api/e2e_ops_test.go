package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
)

// TestE2EBadInput: raw HTTP bodies the server must refuse, and the SDK's view of an error.
func TestE2EBadInput(t *testing.T) {
	x := startE2E(t, engine.Config{})
	ctxLen := loadModel(t).Config.SeqLen
	long := strings.Repeat("Once upon a time there was a dog. ", ctxLen/4) // past the context
	ctxMsg := fmt.Sprintf("context is %d", ctxLen)
	cases := []struct {
		path, body string
		status     int
		msg        string
	}{
		{"/v1/completions", `{"prompt":`, 400, "malformed JSON"},
		{"/v1/completions", `{"prompt":"a","max_tokens":"ten"}`, 400, "max_tokens must be an integer"},
		{"/v1/completions", `{"prompt":"a","max_tokens":0}`, 400, "at least 1"},
		{"/v1/completions", fmt.Sprintf(`{"prompt":"a","max_tokens":%d}`, ctxLen), 400, fmt.Sprintf("context of %d: at most %d", ctxLen, ctxLen-1)},
		{"/v1/completions", `{"prompt":"a","temperature":-1}`, 400, "temperature"},
		{"/v1/completions", `{"prompt":"a","temperature":"warm"}`, 400, "temperature must be a number"},
		{"/v1/completions", `{"model":"gpt-4","prompt":"a"}`, 404, "does not exist"},
		{"/v1/completions", `{"prompt":"` + long + `"}`, 400, ctxMsg},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, ctxMsg},
		{"/v1/chat/completions", `{"messages":[]}`, 400, "messages"},
		{"/v1/completions", `{"prompt":"a","n":65}`, 400, "n must be between 1 and 16"},
	}
	for _, c := range cases {
		status, h, body := x.post(t, c.path, c.body)
		if status != c.status || !strings.Contains(body, c.msg) || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s; want %d with %q", c.path, c.body[:min(len(c.body), 60)], status, body, c.status, c.msg)
		}
	}
	// The SDK reads our error bodies as its own errors.
	_, err := x.client.Completions.New(context.Background(), openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("a")},
		MaxTokens: openai.Int(0),
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "max_tokens" || apiErr.Type != "invalid_request_error" {
		t.Errorf("SDK error: %v", err)
	}
	// Models, health and metrics over the wire.
	models, err := x.client.Models.List(context.Background())
	if err != nil || len(models.Data) != 1 || models.Data[0].ID != "stories260K" {
		t.Errorf("models: %+v, %v", models, err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, err := http.Get(x.base + path); err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", path, resp, err)
		}
	}
}

// TestE2EDisconnect: a client that goes away mid-stream frees its sequence's blocks.
func TestE2EDisconnect(t *testing.T) {
	x := startE2E(t, engine.Config{MaxBatchTokens: 8}) // slow enough to still be running
	ctx, cancel := context.WithCancel(context.Background())
	resp, _ := x.openStream(t, ctx, longStream)
	if st := x.eng.Stats(); st.BlocksFree == st.BlocksTotal && st.Running == 0 {
		t.Log("the generation finished before the disconnect; the test proves less")
	}
	cancel()
	resp.Body.Close()
	waitFor(t, "the blocks of a disconnected stream to be freed", x.allBlocksFree)
	waitFor(t, "the handler to return", func() bool {
		x.srv.mu.Lock()
		defer x.srv.mu.Unlock()
		return x.srv.active == 0
	})
}

// TestE2EQueueFull: with one running and one waiting slot taken, the next request gets 429
// with Retry-After.
func TestE2EQueueFull(t *testing.T) {
	x := startE2E(t, engine.Config{MaxRunning: 1, MaxWaiting: 1, MaxBatchTokens: 4})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, _ := x.openStream(t, ctx, longStream) // running
	defer resp.Body.Close()
	go func() { // waiting behind it
		req, _ := http.NewRequestWithContext(ctx, "POST", x.base+"/v1/completions", strings.NewReader(longStream))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waitFor(t, "a waiting request", func() bool { return x.eng.Stats().Waiting == 1 })
	status, h, body := x.post(t, "/v1/completions", `{"prompt":"a","max_tokens":2}`)
	if status != 429 || h.Get("Retry-After") == "" || !strings.Contains(body, "retry") {
		t.Errorf("full queue: %d Retry-After %q %s", status, h.Get("Retry-After"), body)
	}
	cancel()
	waitFor(t, "the blocks of cancelled requests to be freed", x.allBlocksFree)
}

// TestE2EDrain: draining refuses new generations with 503 and lets the running one finish;
// a drain that runs out of time aborts what runs and frees its blocks.
func TestE2EDrain(t *testing.T) {
	x := startE2E(t, engine.Config{MaxBatchTokens: 8})
	resp, r := x.openStream(t, context.Background(), longStream)
	defer resp.Body.Close()
	drained := make(chan error, 1)
	go func() { drained <- x.srv.Drain(context.Background()) }()
	waitFor(t, "draining", x.srv.isDraining)
	if status, h, _ := x.post(t, "/v1/completions", `{"prompt":"a","max_tokens":2}`); status != 503 || h.Get("Retry-After") == "" {
		t.Errorf("new request while draining: %d", status)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the running stream did not finish: %v %q", err, rest[max(0, len(rest)-100):])
	}
	if err := <-drained; err != nil {
		t.Errorf("drain: %v", err)
	}

	y := startE2E(t, engine.Config{MaxBatchTokens: 2})
	resp2, r2 := y.openStream(t, context.Background(), longStream)
	defer resp2.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := y.srv.Drain(ctx); !errors.Is(err, ErrDraining) {
		t.Errorf("drain past its deadline: %v", err)
	}
	rest, _ = io.ReadAll(r2)
	if strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Log("the stream finished within 5 ms; the abort went untested")
	} else if !strings.Contains(string(rest), `"error"`) {
		t.Errorf("an aborted stream ended without an error frame: %q", rest[max(0, len(rest)-200):])
	}
	waitFor(t, "the blocks of aborted requests to be freed", y.allBlocksFree)
}

// TestE2EMetrics: the HTTP series and the engine's share /metrics.
func TestE2EMetrics(t *testing.T) {
	x := startE2E(t, engine.Config{})
	if _, err := x.client.Completions.New(context.Background(), openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once")},
		MaxTokens: openai.Int(10), Temperature: openai.Float(0),
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(x.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kvmesh_http_requests_total{code="200",endpoint="completions"} 1`,
		`kvmesh_time_to_first_token_seconds_count{endpoint="completions"} 1`,
		`kvmesh_time_per_output_token_seconds_count{endpoint="completions"} 9`,
		`kvmesh_generation_tokens_total 10`,
		`kvmesh_prompt_tokens_total `,
		`kvmesh_kv_blocks{`, // the engine's
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// BenchmarkE2E measures one request of 64 greedy tokens through HTTP and the SDK-free
// client, non-streamed and streamed (time to first chunk reported), against the engine
// alone.
func BenchmarkE2E(b *testing.B) {
	x := startE2E(b, engine.Config{})
	body := `{"prompt":"Once upon a time","max_tokens":64,"temperature":0}`
	b.Run("engine", func(b *testing.B) {
		prompt := x.tok.Encode("Once upon a time", true, false)
		for b.Loop() {
			ch, err := x.eng.Submit(context.Background(), engine.Request{Prompt: prompt, MaxTokens: 64, Sampling: sample.Params{Seed: 1}})
			if err != nil {
				b.Fatal(err)
			}
			for range ch {
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		for b.Loop() {
			resp, err := http.Post(x.base+"/v1/completions", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("http-stream", func(b *testing.B) {
		var first time.Duration
		sbody := strings.TrimSuffix(body, "}") + `,"stream":true}`
		for b.Loop() {
			start := time.Now()
			resp, err := http.Post(x.base+"/v1/completions", "application/json", strings.NewReader(sbody))
			if err != nil {
				b.Fatal(err)
			}
			r := bufio.NewReader(resp.Body)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				if strings.HasPrefix(line, "data: {") {
					break
				}
			}
			first += time.Since(start)
			io.Copy(io.Discard, r)
			resp.Body.Close()
		}
		b.ReportMetric(float64(first.Microseconds())/float64(b.N), "µs-to-first-chunk")
	})
	b.Run("http-8-clients", func(b *testing.B) {
		tokens := 0
		for b.Loop() {
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					resp, err := http.Post(x.base+"/v1/completions", "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				})
			}
			wg.Wait()
			tokens += 8 * 64
		}
		b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
	})
}
