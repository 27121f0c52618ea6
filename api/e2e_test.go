package api

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/internal/reftest"
	"github.com/kvmesh/kvmesh/internal/testmodel"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/tokenizer"
)

// refCase is one reference generation of llama2.c's run.
type refCase = reftest.Case

// maxTokens is run.c's -n as max_tokens: every position after the prompt's last.
func maxTokens(c refCase) int64 { return int64(c.MaxTokens()) }

// expect is the text, finish reason and completion tokens the API must answer with: what
// run.c printed after the prompt, less a BOS that ends the story.
func expect(c refCase) (string, string, int) {
	if c.EndsAtBOS() {
		return c.Text(), "stop", len(c.Tokens())
	}
	return c.Text(), "length", len(c.Tokens())
}

func loadReference(t testing.TB) (greedy, sampled []refCase) { return reftest.Load(t) }

func loadModel(t testing.TB) *model.Model { return testmodel.Load(t) }

// e2e is a real server: the engine on the shipped model, the API over it, an http.Server
// on a loopback port, and an OpenAI SDK client pointed at it.
type e2e struct {
	eng    *engine.Engine
	srv    *Server
	hs     *http.Server
	base   string // http://127.0.0.1:port
	client openai.Client
	tok    *tokenizer.Tokenizer
}

func startE2E(t testing.TB, ecfg engine.Config) *e2e {
	t.Helper()
	m := loadModel(t)
	reg := prometheus.NewRegistry()
	quiet := slog.New(slog.DiscardHandler)
	ecfg.Registry, ecfg.Logger = reg, quiet
	eng, err := engine.New(m, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Generator, cfg.Tokenizer = eng, loadTokenizer(t)
	cfg.ModelName, cfg.ContextLen = ModelName(modelPath), m.Config.SeqLen
	cfg.Ready, cfg.Registry, cfg.Logger = eng.Ready, reg, quiet
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	x := &e2e{eng: eng, srv: srv, hs: hs, base: "http://" + ln.Addr().String(), tok: cfg.Tokenizer.(*tokenizer.Tokenizer)}
	x.client = openai.NewClient(option.WithBaseURL(x.base+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx, hs); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := eng.Shutdown(ctx); err != nil {
			t.Errorf("engine shutdown: %v", err)
		}
		if st := eng.Stats(); st.BlocksFree != st.BlocksTotal {
			t.Errorf("%d of %d KV blocks free after shutdown", st.BlocksFree, st.BlocksTotal)
		}
	})
	return x
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (x *e2e) allBlocksFree() bool {
	st := x.eng.Stats()
	return st.BlocksFree == st.BlocksTotal && st.Running == 0 && st.Waiting == 0
}

func completionParams(c refCase) openai.CompletionNewParams {
	return openai.CompletionNewParams{
		Model:       "stories260K",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(c.Prompt)},
		MaxTokens:   openai.Int(maxTokens(c)),
		Temperature: openai.Float(float64(c.Temperature)),
		TopP:        openai.Float(float64(c.TopP)),
		Seed:        openai.Int(int64(c.Seed)),
	}
}

// post sends a raw JSON body and returns the status, headers and body.
func (x *e2e) post(t *testing.T, path, body string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Post(x.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// openStream starts a streamed completion over raw HTTP and returns once its first text
// chunk has arrived, with the response to read on (or close).
func (x *e2e) openStream(t *testing.T, ctx context.Context, body string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", x.base+"/v1/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before its first chunk: %v", err)
		}
		if strings.HasPrefix(line, "data: {") {
			return resp, r
		}
	}
}

const longStream = `{"prompt":"Once upon a time","max_tokens":252,"temperature":1,"seed":5,"stream":true}`

// streamed is what a streamed completion sent: each choice's text and finish reason, the
// usage frame's completion tokens, and the number of choice chunks.
type streamed struct {
	text, finish     map[int]string
	completionTokens int64
	chunks           int
}

func readStream(stream *ssestream.Stream[openai.Completion]) (streamed, error) {
	got := streamed{text: map[int]string{}, finish: map[int]string{}}
	for stream.Next() {
		ch := stream.Current()
		if ch.Usage.TotalTokens > 0 {
			got.completionTokens = ch.Usage.CompletionTokens
		}
		for _, c := range ch.Choices {
			got.text[int(c.Index)] += c.Text
			if c.FinishReason != "" {
				got.finish[int(c.Index)] = string(c.FinishReason)
			}
			got.chunks++
		}
	}
	return got, stream.Err()
}
