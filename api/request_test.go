package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kvmesh/kvmesh/model/tokenizer"
)

func TestBadRequests(t *testing.T) {
	const ctxLen = 32
	s := newGuardedServer(t, ctxLen, nil)
	h := s.Handler()
	long := strings.Repeat("Once upon a time there was a dog. ", 10) // far past 32 tokens
	cases := []struct {
		name, path, body string
		status           int
		param, msg       string // param "" means null
	}{
		// Both endpoints: the body as a whole.
		{"empty body", "/v1/completions", "", 400, "", "empty"},
		{"malformed", "/v1/completions", `{"prompt": "a",`, 400, "", "malformed JSON"},
		{"trailing garbage", "/v1/completions", `{"prompt": "a"} x`, 400, "", "malformed JSON"},
		{"not an object", "/v1/completions", `["a"]`, 400, "", "JSON object"},
		{"chat malformed", "/v1/chat/completions", `{"messages": [`, 400, "", "malformed JSON"},
		{"chat not an object", "/v1/chat/completions", `"hi"`, 400, "", "JSON object"},
		// Wrong types.
		{"max_tokens string", "/v1/completions", `{"prompt":"a","max_tokens":"5"}`, 400, "max_tokens", "must be an integer, not string"},
		{"max_tokens float", "/v1/completions", `{"prompt":"a","max_tokens":1.5}`, 400, "max_tokens", "must be an integer"},
		{"max_tokens huge", "/v1/completions", `{"prompt":"a","max_tokens":1e30}`, 400, "max_tokens", "out of range"},
		{"temperature string", "/v1/completions", `{"prompt":"a","temperature":"hot"}`, 400, "temperature", "must be a number, not string"},
		{"temperature NaN", "/v1/completions", `{"prompt":"a","temperature":NaN}`, 400, "", "malformed JSON"},
		{"temperature huge", "/v1/completions", `{"prompt":"a","temperature":1e400}`, 400, "temperature", "must be a number"},
		{"temperature past float32", "/v1/completions", `{"prompt":"a","temperature":1e300}`, 400, "temperature", "finite"},
		{"top_p bool", "/v1/completions", `{"prompt":"a","top_p":true}`, 400, "top_p", "must be a number, not bool"},
		{"n string", "/v1/completions", `{"prompt":"a","n":"2"}`, 400, "n", "must be an integer"},
		{"stream string", "/v1/completions", `{"prompt":"a","stream":"yes"}`, 400, "stream", "must be a boolean"},
		{"seed float", "/v1/completions", `{"prompt":"a","seed":1.5}`, 400, "seed", "must be an integer"},
		{"prompt number", "/v1/completions", `{"prompt":5}`, 400, "prompt", "must be a string or an array of token ids, not number"},
		{"prompt object", "/v1/completions", `{"prompt":{"text":"a"}}`, 400, "prompt", "not object"},
		{"prompt mixed array", "/v1/completions", `{"prompt":["a",1]}`, 400, "prompt", "must be a string"},
		{"prompt batch", "/v1/completions", `{"prompt":["a","b"]}`, 400, "prompt", "exactly one prompt"},
		{"prompt empty batch", "/v1/completions", `{"prompt":[]}`, 400, "prompt", "exactly one prompt"},
		{"stop number", "/v1/completions", `{"prompt":"a","stop":5}`, 400, "stop", "string or an array of strings"},
		{"stop array of numbers", "/v1/completions", `{"prompt":"a","stop":[1]}`, 400, "stop", "string or an array of strings"},
		{"model number", "/v1/completions", `{"prompt":"a","model":5}`, 400, "model", "must be a string"},
		{"messages string", "/v1/chat/completions", `{"messages":"hi"}`, 400, "messages", "must be an array of messages"},
		{"message not object", "/v1/chat/completions", `{"messages":["hi"]}`, 400, "messages", "must be"},
		{"role number", "/v1/chat/completions", `{"messages":[{"role":1,"content":"hi"}]}`, 400, "messages.role", "must be a string"},
		{"content number", "/v1/chat/completions", `{"messages":[{"role":"user","content":1}]}`, 400, "messages.content", "string or an array of text parts"},
		{"content image", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "messages", "only text"},
		// Bad values.
		{"no prompt", "/v1/completions", `{"model":"stories260K"}`, 400, "prompt", "required"},
		{"null prompt", "/v1/completions", `{"prompt":null}`, 400, "prompt", "required"},
		{"empty ids", "/v1/completions", `{"prompt":[[]]}`, 400, "prompt", "no tokens"},
		{"id outside vocab", "/v1/completions", `{"prompt":[1,512]}`, 400, "prompt", "outside the vocabulary"},
		{"negative id", "/v1/completions", `{"prompt":[1,-3]}`, 400, "prompt", "outside the vocabulary"},
		{"max_tokens zero", "/v1/completions", `{"prompt":"a","max_tokens":0}`, 400, "max_tokens", "at least 1"},
		{"max_tokens negative", "/v1/completions", `{"prompt":"a","max_tokens":-4}`, 400, "max_tokens", "at least 1"},
		{"max_tokens past context", "/v1/completions", `{"prompt":"a","max_tokens":33}`, 400, "max_tokens", "context of 32"},
		{"max_tokens far past context", "/v1/completions", `{"prompt":"a","max_tokens":100000}`, 400, "max_tokens", "context"},
		{"prompt past context", "/v1/completions", `{"prompt":"` + long + `"}`, 400, "prompt", "context is 32"},
		{"ids past context", "/v1/completions", `{"prompt":[` + strings.Repeat("1,", 32) + `1]}`, 400, "prompt", "33 tokens"},
		{"temperature negative", "/v1/completions", `{"prompt":"a","temperature":-0.5}`, 400, "temperature", ">= 0"},
		{"top_p above 1", "/v1/completions", `{"prompt":"a","top_p":1.5}`, 400, "top_p", "[0, 1]"},
		{"top_p negative", "/v1/completions", `{"prompt":"a","top_p":-0.1}`, 400, "top_p", "[0, 1]"},
		{"n zero", "/v1/completions", `{"prompt":"a","n":0}`, 400, "n", "between 1 and 16"},
		{"n too big", "/v1/completions", `{"prompt":"a","n":17}`, 400, "n", "between 1 and 16"},
		{"empty stop", "/v1/completions", `{"prompt":"a","stop":""}`, 400, "stop", "must not be empty"},
		{"too many stops", "/v1/completions", `{"prompt":"a","stop":["a","b","c","d","e"]}`, 400, "stop", "at most 4"},
		{"echo", "/v1/completions", `{"prompt":"a","echo":true}`, 400, "echo", "not supported"},
		{"logprobs", "/v1/completions", `{"prompt":"a","logprobs":2}`, 400, "logprobs", "not supported"},
		{"best_of", "/v1/completions", `{"prompt":"a","best_of":3}`, 400, "best_of", "not supported"},
		{"suffix", "/v1/completions", `{"prompt":"a","suffix":"end"}`, 400, "suffix", "not supported"},
		{"presence penalty", "/v1/completions", `{"prompt":"a","presence_penalty":0.5}`, 400, "presence_penalty", "not supported"},
		{"stream_options without stream", "/v1/completions", `{"prompt":"a","stream_options":{"include_usage":true}}`, 400, "stream_options", "stream: true"},
		{"unknown model", "/v1/completions", `{"model":"gpt-4","prompt":"a"}`, 404, "model", "does not exist"},
		{"chat unknown model", "/v1/chat/completions", `{"model":"gpt-4","messages":[{"role":"user","content":"a"}]}`, 404, "model", "does not exist"},
		{"no messages", "/v1/chat/completions", `{"model":"stories260K"}`, 400, "messages", "required"},
		{"empty messages", "/v1/chat/completions", `{"messages":[]}`, 400, "messages", "must not be empty"},
		{"no role", "/v1/chat/completions", `{"messages":[{"content":"a"}]}`, 400, "messages", "role is required"},
		{"tool role", "/v1/chat/completions", `{"messages":[{"role":"tool","content":"a"}]}`, 400, "messages", "not supported"},
		{"chat logprobs", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"logprobs":true}`, 400, "logprobs", "not supported"},
		{"chat tools", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function"}]}`, 400, "tools", "not supported"},
		{"chat max_tokens zero", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"max_tokens":0}`, 400, "max_tokens", "at least 1"},
		{"chat max_completion_tokens negative", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"max_completion_tokens":-1}`, 400, "max_completion_tokens", "at least 1"},
		{"chat max tokens disagree", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"max_tokens":3,"max_completion_tokens":4}`, 400, "max_completion_tokens", "differ"},
		{"chat past context", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, "prompt", "context is 32"},
		{"chat temperature negative", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"temperature":-1}`, 400, "temperature", ">= 0"},
		{"chat n too big", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"n":100}`, 400, "n", "between 1 and 16"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := do(h, http.MethodPost, c.path, c.body)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			e := decodeError(t, rec)
			param := ""
			if e.Param != nil {
				param = *e.Param
			}
			if param != c.param {
				t.Errorf("param %q, want %q (%s)", param, c.param, e.Message)
			}
			if !strings.Contains(e.Message, c.msg) {
				t.Errorf("message %q does not say %q", e.Message, c.msg)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	s := newGuardedServer(t, 32, func(c *Config) { c.MaxBodyBytes = 64 })
	rec := do(s.Handler(), http.MethodPost, "/v1/completions", `{"prompt":"`+strings.Repeat("a", 100)+`"}`)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", rec.Code, rec.Body)
	}
	decodeError(t, rec)
}

func TestParseAccepts(t *testing.T) {
	lim := limits{maxN: 16, maxStops: 4}
	cases := []struct {
		name, body string
		chat       bool
		want       genRequest
	}{
		{"defaults", `{"prompt":"Once"}`, false,
			genRequest{text: "Once", temperature: 1, topP: 1, n: 1}},
		{"all fields", `{"model":"m","prompt":"Once","max_tokens":7,"temperature":0,"top_p":0.9,"n":2,"stop":"\n","seed":42,"stream":true,"stream_options":{"include_usage":true},"user":"x","best_of":1,"echo":false}`, false,
			genRequest{model: "m", text: "Once", maxTokens: 7, temperature: 0, topP: 0.9, n: 2, stop: []string{"\n"}, seed: 42, stream: true, includeUsage: true}},
		{"nulls are defaults", `{"prompt":"a","max_tokens":null,"temperature":null,"top_p":null,"n":null,"stop":null,"seed":null,"stream":null}`, false,
			genRequest{text: "a", temperature: 1, topP: 1, n: 1}},
		{"prompt in an array", `{"prompt":["Once"]}`, false,
			genRequest{text: "Once", temperature: 1, topP: 1, n: 1}},
		{"token ids", `{"prompt":[1,403,407]}`, false,
			genRequest{ids: []int{1, 403, 407}, idsGiven: true, temperature: 1, topP: 1, n: 1}},
		{"token ids nested", `{"prompt":[[1,403]]}`, false,
			genRequest{ids: []int{1, 403}, idsGiven: true, temperature: 1, topP: 1, n: 1}},
		{"empty prompt", `{"prompt":""}`, false,
			genRequest{temperature: 1, topP: 1, n: 1}},
		{"top_p 0 is greedy", `{"prompt":"a","top_p":0,"temperature":0.8}`, false,
			genRequest{text: "a", temperature: 0, topP: 1, n: 1}},
		{"seed 0", `{"prompt":"a","seed":0}`, false,
			genRequest{text: "a", temperature: 1, topP: 1, n: 1, seed: zeroSeed}},
		{"negative seed", `{"prompt":"a","seed":-1}`, false,
			genRequest{text: "a", temperature: 1, topP: 1, n: 1, seed: 1<<64 - 1}},
		{"stop array", `{"prompt":"a","stop":["x","yz"]}`, false,
			genRequest{text: "a", temperature: 1, topP: 1, n: 1, stop: []string{"x", "yz"}}},
		{"zero penalties", `{"prompt":"a","presence_penalty":0,"frequency_penalty":0}`, false,
			genRequest{text: "a", temperature: 1, topP: 1, n: 1}},
		{"chat", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":5,"n":3}`, true,
			genRequest{model: "m", maxTokens: 5, temperature: 1, topP: 1, n: 3}},
		{"chat max_tokens", `{"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],"max_tokens":5,"tools":[]}`, true,
			genRequest{maxTokens: 5, temperature: 1, topP: 1, n: 1}},
	}
	for _, c := range cases {
		var g genRequest
		var e *apiError
		if c.chat {
			g, _, e = parseChat([]byte(c.body), lim)
		} else {
			g, e = parseCompletion([]byte(c.body), lim)
		}
		if e != nil {
			t.Errorf("%s: rejected: %v", c.name, e)
			continue
		}
		if !sameGen(g, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, g, c.want)
		}
	}
}

func sameGen(a, b genRequest) bool {
	return a.model == b.model && a.text == b.text && slices.Equal(a.ids, b.ids) && a.idsGiven == b.idsGiven &&
		a.maxTokens == b.maxTokens && a.temperature == b.temperature && a.topP == b.topP && a.seed == b.seed &&
		a.n == b.n && slices.Equal(a.stop, b.stop) && a.stream == b.stream && a.includeUsage == b.includeUsage
}

func TestPrepare(t *testing.T) {
	const ctxLen = 32
	s := newGuardedServer(t, ctxLen, nil)
	tok := loadTokenizer(t)
	prompt := tok.Encode("Once upon a time", true, false) // 5 tokens
	cases := []struct {
		name      string
		g         genRequest
		maxTokens int
	}{
		{"default is the rest of the context", genRequest{text: "Once upon a time", n: 1, temperature: 1, topP: 1}, ctxLen + 1 - len(prompt)},
		{"given", genRequest{text: "Once upon a time", n: 1, maxTokens: 3, temperature: 1, topP: 1}, 3},
		{"exactly up to the context", genRequest{text: "Once upon a time", n: 1, maxTokens: ctxLen + 1 - len(prompt), temperature: 1, topP: 1}, ctxLen + 1 - len(prompt)},
		{"empty prompt is BOS", genRequest{n: 1, temperature: 1, topP: 1}, ctxLen},
	}
	for _, c := range cases {
		req, e := s.prepare(c.g)
		if e != nil {
			t.Errorf("%s: %v", c.name, e)
			continue
		}
		if req.MaxTokens != c.maxTokens {
			t.Errorf("%s: max tokens %d, want %d", c.name, req.MaxTokens, c.maxTokens)
		}
		if req.Sampling.Seed == 0 {
			t.Errorf("%s: seed 0 sent to the engine", c.name)
		}
		if req.Prompt[0] != tokenizer.BOS || len(req.StopTokens) != 1 || req.StopTokens[0] != tokenizer.BOS {
			t.Errorf("%s: prompt %v, stop tokens %v", c.name, req.Prompt, req.StopTokens)
		}
	}
	// A configured default is clipped to the room left.
	s2 := newGuardedServer(t, ctxLen, func(c *Config) { c.DefaultMaxTokens = 10 })
	if req, _ := s2.prepare(genRequest{text: "Once upon a time", n: 1}); req.MaxTokens != 10 {
		t.Errorf("configured default: %d, want 10", req.MaxTokens)
	}
	ids := make([]int, 30) // leaves room for 3
	ids[0] = tokenizer.BOS
	if req, _ := s2.prepare(genRequest{ids: ids, idsGiven: true, n: 1}); req.MaxTokens != 3 {
		t.Errorf("configured default not clipped: %d, want 3", req.MaxTokens)
	}
	// Two requests without a seed get different seeds; a given seed is kept.
	a, _ := s.prepare(genRequest{text: "a", n: 1})
	b, _ := s.prepare(genRequest{text: "a", n: 1})
	if a.Sampling.Seed == b.Sampling.Seed {
		t.Errorf("two requests drew the same seed %d", a.Sampling.Seed)
	}
	if c, _ := s.prepare(genRequest{text: "a", n: 1, seed: 42}); c.Sampling.Seed != 42 {
		t.Errorf("seed %d, want 42", c.Sampling.Seed)
	}
}
