package loadgen

// These tests drive the HTTP client against httptest servers that replay canned bytes
// (testdata/stream_ok.sse and small literals): they test the client's handling of the
// wire format, statuses, timing and retries, not any server behaviour. The end-to-end test
// against the real kvmesh server is in cmd/kvmesh.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// replay serves events (each a complete "data: ...\n\n" block) as an event stream,
// flushing each after waiting gap.
func replay(events []string, gap time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, e := range events {
			time.Sleep(gap)
			_, _ = w.Write([]byte(e))
			w.(http.Flusher).Flush()
		}
	}
}

// fixtureEvents splits testdata/stream_ok.sse into its blank-line-separated blocks.
func fixtureEvents(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/stream_ok.sse")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	var out []string
	for _, e := range strings.SplitAfter(s, "\n\n") {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

func testConfig(url string) Config {
	c := DefaultConfig()
	c.URL = url
	c.Model = "kvmesh"
	c.Requests = 1
	c.Timeout = 10 * time.Second
	return c
}

func runOne(t *testing.T, cfg Config) *Record {
	t.Helper()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Records) != 1 {
		t.Fatalf("%d records, want 1", len(rep.Records))
	}
	return &rep.Records[0]
}

func TestStreamRecord(t *testing.T) {
	const gap = 15 * time.Millisecond
	events := fixtureEvents(t)
	var body []byte
	h := replay(events, gap)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/completions" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		body, _ = readAll(r)
		h(w, r)
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL + "/")
	cfg.Seed = 40
	cfg.MaxTokens = 4
	rec := runOne(t, cfg)
	if !rec.OK() {
		t.Fatalf("request failed: %s", rec.Error)
	}
	if rec.Text != "Once upon a time" || rec.OutputTokens != 4 || rec.PromptTokens != 7 ||
		len(rec.TokenTimes) != 4 || rec.FinishReason != "length" || rec.Status != 200 {
		t.Fatalf("record: %+v", rec)
	}
	// Causal bounds: a byte cannot arrive before the server wrote it.
	ttft, _ := rec.TTFT()
	if ttft < gap || rec.FirstByte-rec.Start < gap {
		t.Fatalf("TTFT %v / first byte %v earlier than the server's first write (%v)", ttft, rec.FirstByte-rec.Start, gap)
	}
	if e2e := rec.E2E(); e2e < time.Duration(len(events))*gap {
		t.Fatalf("E2E %v shorter than the %d writes %v apart", e2e, len(events), gap)
	}
	for i := 1; i < len(rec.TokenTimes); i++ {
		if rec.TokenTimes[i] < rec.TokenTimes[i-1] {
			t.Fatalf("token times out of order: %v", rec.TokenTimes)
		}
	}
	if tpot, ok := rec.TPOT(); !ok || tpot != (rec.TokenTimes[3]-rec.TokenTimes[0])/3 {
		t.Fatalf("TPOT %v %v", tpot, ok)
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	prompts, _ := cfg.Prompts.Generate(1, 40)
	if req["prompt"] != prompts[0].Text || req["seed"] != 40.0 || req["max_tokens"] != 4.0 ||
		req["stream"] != true || req["model"] != "kvmesh" || req["temperature"] != 0.0 {
		t.Fatalf("request body %s", body)
	}
	if so, _ := req["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatalf("request body without stream_options.include_usage: %s", body)
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func TestRequestErrors(t *testing.T) {
	events := fixtureEvents(t)
	// stall reads the request (the server notices a closed connection only then) and
	// waits for the client to go away.
	stall := func(w http.ResponseWriter, r *http.Request) {
		_, _ = readAll(r)
		<-r.Context().Done()
	}
	tests := []struct {
		name       string
		h          http.HandlerFunc
		edit       func(*Config)
		kind       string
		rejections int
	}{
		{"no [DONE]", replay(events[:len(events)-1], 0), nil, KindStream, 0},
		{"bad json", replay([]string{"data: {oops\n\n"}, 0), nil, KindStream, 0},
		{"error event", replay([]string{events[0], `data: {"error":{"message":"boom","type":"server_error"}}` + "\n\n"}, 0), nil, KindStream, 0},
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", 500) }, nil, KindStatus, 0},
		{"400", func(w http.ResponseWriter, r *http.Request) { http.Error(w, `{"error":{"message":"too long"}}`, 400) }, nil, KindStatus, 0},
		{"429 not retried", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", 429)
		}, nil, KindRejected, 1},
		{"429 past the timeout", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3600")
			http.Error(w, "busy", 429)
		}, func(c *Config) { c.RetryRejected = true }, KindRejected, 1},
		{"429 retries exhausted", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "0.001")
			http.Error(w, "busy", 429)
		}, func(c *Config) { c.RetryRejected, c.MaxRetries = true, 2 }, KindRejected, 3},
		{"stalled", stall, func(c *Config) { c.Timeout = 100 * time.Millisecond }, KindTimeout, 0},
		{"stalled mid-stream", func(w http.ResponseWriter, r *http.Request) {
			replay(events[:1], 0)(w, r)
			stall(w, r)
		}, func(c *Config) { c.Timeout = 100 * time.Millisecond }, KindTimeout, 0},
		{"non-stream bad body", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"choices":[]}`)) },
			func(c *Config) { c.Stream = false }, KindStream, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.h)
			defer srv.Close()
			cfg := testConfig(srv.URL)
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			rec := runOne(t, cfg)
			if rec.ErrorKind != tt.kind || rec.Rejections != tt.rejections || rec.Error == "" {
				t.Fatalf("got kind %q (%s), %d rejections; want %q, %d", rec.ErrorKind, rec.Error, rec.Rejections, tt.kind, tt.rejections)
			}
			if rec.End < rec.Start {
				t.Fatalf("end %v before start %v", rec.End, rec.Start)
			}
		})
	}
}

// TestStalledAfterDone: a server that keeps the stream open after [DONE] costs the
// request its timeout, but the request succeeded and ended at [DONE].
func TestStalledAfterDone(t *testing.T) {
	events := fixtureEvents(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = readAll(r)
		replay(events, 0)(w, r)
		<-r.Context().Done()
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Timeout = 100 * time.Millisecond
	rec := runOne(t, cfg)
	if !rec.OK() || rec.OutputTokens != 4 || rec.E2E() >= cfg.Timeout {
		t.Fatalf("record %+v", rec)
	}
}

func TestRetryAfter429(t *testing.T) {
	events := fixtureEvents(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", 429)
			return
		}
		replay(events, 0)(w, r)
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.RetryRejected = true
	rec := runOne(t, cfg)
	if !rec.OK() || rec.Rejections != 2 || calls.Load() != 3 || rec.OutputTokens != 4 {
		t.Fatalf("record %+v after %d calls", rec, calls.Load())
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", time.Second},
		{"2", 2 * time.Second},
		{" 0.25 ", 250 * time.Millisecond},
		{"-1", time.Second},
		{"soon", time.Second},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{now.Add(-3 * time.Second).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.h, now, time.Second); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestNonStreaming(t *testing.T) {
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = readAll(r)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"c","object":"text_completion","choices":[{"index":0,"text":"Once upon","finish_reason":"length"}],` +
			`"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`))
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Stream = false
	rec := runOne(t, cfg)
	if !rec.OK() || rec.Text != "Once upon" || rec.OutputTokens != 2 || rec.PromptTokens != 5 || len(rec.TokenTimes) != 0 {
		t.Fatalf("record %+v", rec)
	}
	if _, ok := rec.TTFT(); ok {
		t.Fatal("TTFT of a non-streaming request")
	}
	if bytes.Contains(body, []byte("stream_options")) || !bytes.Contains(body, []byte(`"stream":false`)) {
		t.Fatalf("request body %s", body)
	}
}

// inflight wraps h, recording the most requests it served at once.
type inflight struct {
	mu       sync.Mutex // protects now and most
	now, max int
	h        http.HandlerFunc
}

func (f *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.now++
	f.max = max(f.max, f.now)
	f.mu.Unlock()
	f.h(w, r)
	f.mu.Lock()
	f.now--
	f.mu.Unlock()
}

func TestRunClosedLoop(t *testing.T) {
	f := &inflight{h: replay(fixtureEvents(t), time.Millisecond)}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Requests, cfg.Concurrency = 12, 3
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Summary
	if s.Sent != 12 || s.Succeeded != 12 || s.NotSent != 0 || s.OutputTokens != 48 || s.PromptTokens != 84 {
		t.Fatalf("summary %+v", s)
	}
	for i, r := range rep.Records {
		if r.Index != i || r.Scheduled > r.Start {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if f.max > 3 {
		t.Fatalf("%d requests in flight, want at most 3", f.max)
	}
	checkSummary(t, rep)
}

func TestRunOpenLoop(t *testing.T) {
	f := &inflight{h: replay(fixtureEvents(t), 2*time.Millisecond)}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Requests, cfg.Rate, cfg.Concurrency, cfg.Seed = 20, 400, 2, 5
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Succeeded != 20 {
		t.Fatalf("summary %+v", rep.Summary)
	}
	arr := poissonArrivals(20, 400, 5)
	for i, r := range rep.Records {
		if r.Scheduled != arr[i] || r.Start < r.Scheduled {
			t.Fatalf("record %d scheduled %v started %v, arrival %v", i, r.Scheduled, r.Start, arr[i])
		}
	}
	if f.max > 2 {
		t.Fatalf("%d requests in flight, want at most 2", f.max)
	}
	checkSummary(t, rep)
}

func TestRunDurationCap(t *testing.T) {
	const gap = 10 * time.Millisecond // each request takes at least 6 gaps
	srv := httptest.NewServer(replay(fixtureEvents(t), gap))
	defer srv.Close()
	for _, rate := range []float64{0, 1000} {
		cfg := testConfig(srv.URL)
		cfg.Requests, cfg.Duration, cfg.Rate, cfg.Concurrency = 100, 50*time.Millisecond, rate, 1
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// One worker: the second request starts ≥ 60 ms in, after the cap.
		s := rep.Summary
		if s.Sent != 1 || s.NotSent != 99 || s.Succeeded != 1 {
			t.Fatalf("rate %v: summary %+v", rate, s)
		}
	}
}

func TestRunCancel(t *testing.T) {
	arrived := make(chan struct{}, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = readAll(r)
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	cfg := testConfig(srv.URL)
	cfg.Requests = 5
	rep, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("Run = %v, %v; want a report and context.Canceled", rep, err)
	}
	if rep.Summary.Sent != 1 || rep.Summary.NotSent != 4 || rep.Records[0].ErrorKind != KindCanceled {
		t.Fatalf("summary %+v, record %+v", rep.Summary, rep.Records[0])
	}
}

func TestListedModel(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"object":"list","data":[{"id":"stories260K","object":"model"},{"id":"other"}]}`))
	})
	var model string
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) {
		var req completionRequest
		b, _ := readAll(r)
		_ = json.Unmarshal(b, &req)
		model = req.Model
		replay(fixtureEvents(t), 0)(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Model = ""
	rep, err := Run(context.Background(), cfg)
	if err != nil || model != "stories260K" || rep.Run.Model != "stories260K" || rep.Summary.Succeeded != 1 {
		t.Fatalf("Run = %v; model sent %q, report %+v", err, model, rep)
	}
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	cfg.URL = empty.URL
	if rep, err := Run(context.Background(), cfg); !errors.Is(err, ErrStatus) || rep != nil {
		t.Fatalf("Run without a model list = %v, %v", rep, err)
	}
}

func TestRunWarmup(t *testing.T) {
	var mu sync.Mutex
	var got []completionRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req completionRequest
		b, _ := readAll(r)
		_ = json.Unmarshal(b, &req)
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		replay(fixtureEvents(t), 0)(w, r)
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Requests, cfg.Warmup, cfg.Seed = 3, 2, 10
	cfg.Prompts = PromptSet{Kind: PromptsSharedPrefix, Groups: 2}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	prompts, _ := cfg.Prompts.Generate(5, 10)
	if len(got) != 5 || len(rep.Records) != 3 || rep.Summary.Succeeded != 3 || rep.Summary.WarmupFailed != 0 {
		t.Fatalf("%d requests served, report %+v", len(got), rep.Summary)
	}
	for i, want := range []int{3, 4, 0, 1, 2} { // warm-ups first, one at a time
		if got[i].Prompt != prompts[want].Text || got[i].Seed != 10+int64(want) {
			t.Fatalf("request %d: prompt %q seed %d, want prompt %d", i, got[i].Prompt, got[i].Seed, want)
		}
	}
	for _, r := range rep.Records {
		if r.Start < 0 || r.Scheduled < 0 {
			t.Fatalf("record times not from the measured start: %+v", r)
		}
	}
}

func TestRunBadConfig(t *testing.T) {
	if rep, err := Run(context.Background(), Config{}); !errors.Is(err, ErrConfig) || rep != nil {
		t.Fatalf("Run(zero config) = %v, %v", rep, err)
	}
}

// checkSummary checks a report's summary against its records.
func checkSummary(t *testing.T, rep *Report) {
	t.Helper()
	s := rep.Summary
	var ok, out, prompt, itl int
	for i := range rep.Records {
		r := &rep.Records[i]
		if r.OK() {
			ok++
			out += r.OutputTokens
			prompt += r.PromptTokens
			itl += max(len(r.TokenTimes)-1, 0)
		}
	}
	if s.Succeeded != ok || s.OutputTokens != out || s.PromptTokens != prompt || s.ITL.N != itl ||
		s.Sent != len(rep.Records) || s.Succeeded+s.Failed != s.Sent || s.E2E.N != ok {
		t.Fatalf("summary %+v disagrees with its records", s)
	}
	for _, d := range []Dist{s.TTFT, s.TPOT, s.ITL, s.E2E} {
		if !(d.P50 <= d.P90 && d.P90 <= d.P99 && d.P99 <= d.Max && d.Mean <= d.Max) {
			t.Fatalf("dist out of order: %+v", d)
		}
	}
	if s.TTFT.N > 0 && s.TTFT.P50 > s.E2E.Max {
		t.Fatalf("TTFT %+v beyond E2E %+v", s.TTFT, s.E2E)
	}
	if ok > 0 && (s.Duration <= 0 || s.RequestRate <= 0 || s.OutputTokenRate < s.RequestRate) {
		t.Fatalf("throughput %+v", s)
	}
}
