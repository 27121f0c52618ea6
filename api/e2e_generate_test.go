package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/kvmesh/kvmesh/engine"
)

// TestE2EReference: completions, plain and streamed, equal llama2.c's outputs, greedy and
// seeded, with the finish reason and usage run.c's run implies.
func TestE2EReference(t *testing.T) {
	x := startE2E(t, engine.Config{})
	greedy, sampled := loadReference(t)
	ctx := context.Background()
	for i, c := range append(greedy, sampled...) {
		want, finish, tokens := expect(c)
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
		got, err := readStream(x.client.Completions.NewStreaming(ctx, p))
		if err != nil {
			t.Fatalf("%s streamed: %v", name, err)
		}
		if got.text[0] != want || got.finish[0] != finish || got.completionTokens != int64(tokens) {
			t.Errorf("%s streamed:\n got %q (%s, %d tokens)\nwant %q (%s, %d tokens)", name, got.text[0], got.finish[0], got.completionTokens, want, finish, tokens)
		}
		if got.chunks < 2 {
			t.Errorf("%s streamed in %d chunks", name, got.chunks)
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
	want, finish, tokens := expect(c)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:       "stories260K",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(c.Prompt)},
		MaxTokens:   openai.Int(maxTokens(c)),
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
	// top_p 0 is greedy whatever the temperature.
	greedy, _ := loadReference(t)
	full, _, _ := expect(greedy[0])
	topP0, err := x.client.Completions.New(ctx, openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(40), Temperature: openai.Float(1.5), TopP: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := topP0.Choices[0].Text; !strings.HasPrefix(full, got) || len(got) < 40 {
		t.Errorf("top_p 0: %q is not the greedy story %q", got, full[:min(len(full), 200)])
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
	got, err := readStream(stream)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got.text[i] != res.Choices[i].Text {
			t.Errorf("streamed choice %d: %q, want %q", i, got.text[i], res.Choices[i].Text)
		}
	}
}

// TestE2EStop: a stop string ends the choice before it, plain and streamed, and the
// engine request is cancelled (its blocks come back).
func TestE2EStop(t *testing.T) {
	x := startE2E(t, engine.Config{})
	greedy, _ := loadReference(t)
	c := greedy[0]
	full, _, _ := expect(c)
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
		got, err := readStream(x.client.Completions.NewStreaming(ctx, p))
		if err != nil {
			t.Fatal(err)
		}
		if got.text[0] != want || got.finish[0] != finish {
			t.Errorf("stop %q streamed: %q (%s), want %q (%s)", stop, got.text[0], got.finish[0], want, finish)
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

// TestE2EConcurrentReference: the reference cases sent all at once (batched by the engine)
// still equal llama2.c's outputs.
func TestE2EConcurrentReference(t *testing.T) {
	x := startE2E(t, engine.Config{})
	greedy, sampled := loadReference(t)
	cases := append(greedy, sampled...)
	errs := make(chan error, len(cases))
	for _, c := range cases {
		go func() {
			want, finish, _ := expect(c)
			got, err := readStream(x.client.Completions.NewStreaming(context.Background(), completionParams(c)))
			switch {
			case err != nil:
				errs <- err
			case got.text[0] != want || got.finish[0] != finish:
				errs <- fmt.Errorf("%q seed %d: got %q (%s), want %q (%s)", c.Prompt, c.Seed, got.text[0], got.finish[0], want, finish)
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
