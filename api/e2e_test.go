package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/sample"
	"github.com/kvmesh/kvmesh/model/tokenizer"
)

const referencePath = "../testdata/reference/stories260K_greedy.json"

// refCase is one reference generation of llama2.c's run.
type refCase struct {
	Prompt       string  `json:"prompt"`
	Temperature  float64 `json:"temperature"`
	TopP         float64 `json:"top_p"`
	Seed         int64   `json:"seed"`
	Steps        int     `json:"steps"`
	PromptIDs    []int   `json:"prompt_ids"`
	GeneratedIDs []int   `json:"generated_ids"`
	Stdout       string  `json:"stdout"`
}

// maxTokens is run.c's -n as max_tokens: every position after the prompt's last.
func (c refCase) maxTokens() int64 { return int64(c.Steps - len(c.PromptIDs) + 1) }

// want is the text and finish reason the API must answer with: the generated ids, less
// a BOS that ends the story, decoded as run.c prints them.
func (c refCase) want(tok *tokenizer.Tokenizer) (string, string, int) {
	ids, finish := c.GeneratedIDs, "length"
	if n := len(ids); n > 0 && ids[n-1] == tokenizer.BOS {
		ids, finish = ids[:n-1], "stop"
	}
	var b strings.Builder
	prev := c.PromptIDs[len(c.PromptIDs)-1]
	for _, id := range ids {
		if piece := tok.Decode(prev, id); tokenizer.Printable(piece) {
			b.WriteString(piece)
		}
		prev = id
	}
	return b.String(), finish, len(ids)
}

func loadReference(t testing.TB) (greedy, sampled []refCase) {
	t.Helper()
	data, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ Greedy, Sampled []refCase }
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	return ref.Greedy, ref.Sampled
}

var (
	modelOnce sync.Once
	testModel *model.Model
	modelErr  error
)

func loadModel(t testing.TB) *model.Model {
	t.Helper()
	modelOnce.Do(func() {
		var ck *ckpt.Checkpoint
		if ck, modelErr = ckpt.Open(modelPath); modelErr == nil {
			testModel, modelErr = model.New(ck)
		}
	})
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return testModel
}

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
		MaxTokens:   openai.Int(c.maxTokens()),
		Temperature: openai.Float(c.Temperature),
		TopP:        openai.Float(c.TopP),
		Seed:        openai.Int(c.Seed),
	}
}

// TestE2EReference: completions, plain and streamed, equal llama2.c's outputs, greedy and
// seeded, with the finish reason and usage run.c's run implies.
func TestE2EReference(t *testing.T) {
	x := startE2E(t, engine.Config{})
	greedy, sampled := loadReference(t)
	ctx := context.Background()
	for i, c := range append(greedy, sampled...) {
		want, finish, tokens := c.want(x.tok)
		if i == 0 && !strings.HasPrefix(c.Stdout, c.Prompt+want) {
			t.Fatalf("the decoding of the reference ids is not run.c's stdout:\n%q\n%q", c.Prompt+want, c.Stdout)
		}
		name := fmt.Sprintf("%q steps %d seed %d", c.Prompt, c.Steps, c.Seed)
		res, err := x.client.Completions.New(ctx, completionParams(c))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res.Choices) != 1 || res.Choices[0].Text != want || string(res.Choices[0].FinishReason) != finish {
			t.Errorf("%s:\n got %q (%v)\nwant %q (%s)", name, res.Choices[0].Text, res.Choices[0].FinishReason, want, finish)
		}
		if u := res.Usage; u.PromptTokens != int64(len(c.PromptIDs)) || u.CompletionTokens != int64(tokens) ||
			u.TotalTokens != u.PromptTokens+u.CompletionTokens {
			t.Errorf("%s: usage %+v, want %d prompt and %d completion tokens", name, u, len(c.PromptIDs), tokens)
		}
		if res.Model != "stories260K" || res.Object != "text_completion" || !strings.HasPrefix(res.ID, "cmpl-") {
			t.Errorf("%s: model %q object %q id %q", name, res.Model, res.Object, res.ID)
		}

		// The same, streamed, with the usage frame.
		p := completionParams(c)
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := x.client.Completions.NewStreaming(ctx, p)
		var text strings.Builder
		var gotFinish string
		var gotUsage int64
		chunks := 0
		for stream.Next() {
			ch := stream.Current()
			if ch.Usage.TotalTokens > 0 {
				gotUsage = ch.Usage.CompletionTokens
			}
			for _, choice := range ch.Choices {
				text.WriteString(choice.Text)
				if choice.FinishReason != "" {
					gotFinish = string(choice.FinishReason)
				}
				chunks++
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("%s streamed: %v", name, err)
		}
		if text.String() != want || gotFinish != finish || gotUsage != int64(tokens) {
			t.Errorf("%s streamed:\n got %q (%s, %d tokens)\nwant %q (%s, %d tokens)", name, text.String(), gotFinish, gotUsage, want, finish, tokens)
		}
		if chunks < 2 {
			t.Errorf("%s streamed in %d chunks", name, chunks)
		}
	}
	waitFor(t, "all KV blocks free", x.allBlocksFree)
}

// TestE2EChat: a chat of one user message is the completion of its text (the plain
// template), plain and streamed.
func TestE2EChat(t *testing.T) {
	x := startE2E(t, engine.Config{})
	greedy, _ := loadReference(t)
	c := greedy[0] // "Once upon a time", 256 steps
	want, finish, tokens := c.want(x.tok)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:       "stories260K",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(c.Prompt)},
		MaxTokens:   openai.Int(c.maxTokens()),
		Temperature: openai.Float(0),
	}
	res, err := x.client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 || res.Choices[0].Message.Content != want || res.Choices[0].FinishReason != finish ||
		string(res.Choices[0].Message.Role) != "assistant" || res.Usage.CompletionTokens != int64(tokens) {
		t.Errorf("chat: %+v\nwant %q (%s)", res.Choices, want, finish)
	}
	if res.Object != "chat.completion" || !strings.HasPrefix(res.ID, "chatcmpl-") {
		t.Errorf("chat: object %q id %q", res.Object, res.ID)
	}

	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := x.client.Chat.Completions.NewStreaming(ctx, params)
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != want || acc.Choices[0].FinishReason != finish ||
		acc.Usage.CompletionTokens != int64(tokens) {
		t.Errorf("streamed chat: %q (%s, usage %+v)\nwant %q (%s)", acc.Choices[0].Message.Content, acc.Choices[0].FinishReason, acc.Usage, want, finish)
	}
}

// TestE2ESamplesAndSeeds: n = 2 gives choice i the story of seed+i; the same seed gives the
// same stories; no seed gives a random one.
func TestE2ESamplesAndSeeds(t *testing.T) {
	x := startE2E(t, engine.Config{})
	ctx := context.Background()
	one := func(seed int64) string {
		res, err := x.client.Completions.New(ctx, openai.CompletionNewParams{
			Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
			MaxTokens: openai.Int(40), Seed: openai.Int(seed), Temperature: openai.Float(1), TopP: openai.Float(0.9),
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Choices[0].Text
	}
	res, err := x.client.Completions.New(ctx, openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(40), N: openai.Int(2), Seed: openai.Int(42), Temperature: openai.Float(1), TopP: openai.Float(0.9),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 2 || res.Choices[0].Index != 0 || res.Choices[1].Index != 1 {
		t.Fatalf("n = 2: %+v", res.Choices)
	}
	for i, ch := range res.Choices {
		if solo := one(42 + int64(i)); ch.Text != solo {
			t.Errorf("choice %d:\n got %q\nwant %q (seed %d alone)", i, ch.Text, solo, 42+i)
		}
	}
	if res.Choices[0].Text == res.Choices[1].Text {
		t.Errorf("two samples with seeds 42 and 43 told the same story %q", res.Choices[0].Text)
	}
	if res.Usage.CompletionTokens < 2 || res.Usage.CompletionTokens > 80 {
		t.Errorf("usage of n = 2 with 40 tokens each: %+v", res.Usage)
	}
	// Seed 0 is a seed like any other; without a seed, requests (almost surely) differ.
	if a, b := one(0), one(0); a != b {
		t.Errorf("seed 0 twice: %q and %q", a, b)
	}
	var texts []string
	for range 3 {
		res, err := x.client.Completions.New(ctx, openai.CompletionNewParams{
			Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
			MaxTokens: openai.Int(40),
		})
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, res.Choices[0].Text)
	}
	if texts[0] == texts[1] && texts[1] == texts[2] {
		t.Errorf("three requests without a seed told the same story %q", texts[0])
	}

	// Streamed n = 2: each choice's text is the same as unstreamed.
	stream := x.client.Completions.NewStreaming(ctx, openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(40), N: openai.Int(2), Seed: openai.Int(42), Temperature: openai.Float(1), TopP: openai.Float(0.9),
	})
	got := make([]strings.Builder, 2)
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			got[ch.Index].WriteString(ch.Text)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].String() != res.Choices[i].Text {
			t.Errorf("streamed choice %d: %q, want %q", i, got[i].String(), res.Choices[i].Text)
		}
	}
}

// TestE2EStop: a stop string ends the choice before it, plain and streamed, and the
// engine request is cancelled (its blocks come back).
func TestE2EStop(t *testing.T) {
	x := startE2E(t, engine.Config{})
	greedy, _ := loadReference(t)
	c := greedy[0]
	full, _, _ := c.want(x.tok)
	ctx := context.Background()
	for _, stop := range [][]string{{"Lily"}, {"park", "\n"}, {"\""}, {"no such words here"}} {
		want, finish := full, "length"
		if cut := firstIndex(full, stop); cut >= 0 {
			want, finish = full[:cut], "stop"
		}
		p := completionParams(c)
		p.Stop = openai.CompletionNewParamsStopUnion{OfStringArray: stop}
		res, err := x.client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Choices[0]; got.Text != want || string(got.FinishReason) != finish {
			t.Errorf("stop %q: %q (%s), want %q (%s)", stop, got.Text, got.FinishReason, want, finish)
		}
		stream := x.client.Completions.NewStreaming(ctx, p)
		var text strings.Builder
		var gotFinish string
		for stream.Next() {
			for _, ch := range stream.Current().Choices {
				text.WriteString(ch.Text)
				if ch.FinishReason != "" {
					gotFinish = string(ch.FinishReason)
				}
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if text.String() != want || gotFinish != finish {
			t.Errorf("stop %q streamed: %q (%s), want %q (%s)", stop, text.String(), gotFinish, want, finish)
		}
	}
	// Chat with a single stop string.
	res, err := x.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "stories260K", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(c.Prompt)},
		Temperature: openai.Float(0), Stop: openai.ChatCompletionNewParamsStopUnion{OfString: openai.String(".")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := full[:strings.Index(full, ".")]; res.Choices[0].Message.Content != want || res.Choices[0].FinishReason != "stop" {
		t.Errorf("chat stop \".\": %q (%s), want %q", res.Choices[0].Message.Content, res.Choices[0].FinishReason, want)
	}
	waitFor(t, "all KV blocks free after stop strings", x.allBlocksFree)
}

func firstIndex(s string, subs []string) int {
	cut := -1
	for _, sub := range subs {
		if i := strings.Index(s, sub); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	return cut
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

// TestE2EConcurrentReference: the reference cases sent all at once (batched by the engine)
// still equal llama2.c's outputs.
func TestE2EConcurrentReference(t *testing.T) {
	x := startE2E(t, engine.Config{})
	greedy, sampled := loadReference(t)
	cases := append(greedy, sampled...)
	errs := make(chan error, len(cases))
	for _, c := range cases {
		go func() {
			want, finish, _ := c.want(x.tok)
			stream := x.client.Completions.NewStreaming(context.Background(), completionParams(c))
			var text strings.Builder
			var got string
			for stream.Next() {
				for _, ch := range stream.Current().Choices {
					text.WriteString(ch.Text)
					if ch.FinishReason != "" {
						got = string(ch.FinishReason)
					}
				}
			}
			switch {
			case stream.Err() != nil:
				errs <- stream.Err()
			case text.String() != want || got != finish:
				errs <- fmt.Errorf("%q seed %d: got %q (%s), want %q (%s)", c.Prompt, c.Seed, text.String(), got, want, finish)
			default:
				errs <- nil
			}
		}()
	}
	for range cases {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestE2EStreamFrames reads a chat stream of n = 2 frame by frame: every frame is one
// JSON chunk with the response's id, each choice starts with its role and finishes once,
// the usage frame has no choices, and [DONE] ends it.
func TestE2EStreamFrames(t *testing.T) {
	x := startE2E(t, engine.Config{})
	body := `{"model":"stories260K","messages":[{"role":"user","content":"Once upon a time"}],"n":2,"seed":9,"max_tokens":30,"stream":true,"stream_options":{"include_usage":true}}`
	resp, err := http.Post(x.base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	frames := strings.Split(strings.TrimSuffix(string(raw), "\n\n"), "\n\n")
	if frames[len(frames)-1] != "data: [DONE]" {
		t.Fatalf("last frame %q", frames[len(frames)-1])
	}
	var id string
	role := map[int]bool{}
	finished := map[int]int{}
	sawUsage := false
	for i, f := range frames[:len(frames)-1] {
		data, ok := strings.CutPrefix(f, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("frame %d is not one data line: %q", i, f)
		}
		var ch chatChunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("frame %d: %v: %s", i, err, data)
		}
		if id == "" {
			id = ch.ID
		}
		if ch.ID != id || ch.Object != "chat.completion.chunk" || ch.Model != "stories260K" {
			t.Fatalf("frame %d: %s", i, data)
		}
		if sawUsage {
			t.Fatalf("frame after the usage frame: %s", data)
		}
		if ch.Usage != nil {
			sawUsage = len(ch.Choices) == 0 && ch.Usage.PromptTokens == 5 && ch.Usage.CompletionTokens == 60
			if !sawUsage {
				t.Fatalf("usage frame %s", data)
			}
			continue
		}
		for _, c := range ch.Choices {
			if c.Delta.Role == "assistant" {
				role[c.Index] = true
			} else if !role[c.Index] {
				t.Fatalf("choice %d has content before its role: %s", c.Index, data)
			}
			if finished[c.Index] > 0 {
				t.Fatalf("choice %d continues after its finish: %s", c.Index, data)
			}
			if c.FinishReason != nil {
				finished[c.Index]++
			}
		}
	}
	if len(role) != 2 || finished[0] != 1 || finished[1] != 1 || !sawUsage {
		t.Errorf("roles %v, finishes %v, usage %v", role, finished, sawUsage)
	}
}
