package shard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/internal/reftest"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
)

// refCase is one reference generation of llama2.c's run.c.
type refCase = reftest.Case

// referenceCases is every greedy and sampled case of the shipped reference.
func referenceCases(t testing.TB) []refCase { return reftest.All(t) }

func requestOf(c refCase) engine.Request {
	return engine.Request{
		Prompt: c.PromptIDs, MaxTokens: c.MaxTokens(),
		Sampling: sample.Params{Temperature: c.Temperature, TopP: c.TopP, Seed: c.Seed},
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// pipeline is an engine leading layers [0, 2) of m over a StageClient to stages on
// stages (addresses in layer order).
func pipeline(t testing.TB, m *model.Model, cfg engine.Config, stages ...string) (*engine.Engine, *recorder) {
	t.Helper()
	return pipelineWith(t, m, cfg, 0, nil, stages...)
}

// pipelineWith is pipeline with the client's DeadAfter (0: the default) and a hook
// between the engine and the client.
func pipelineWith(t testing.TB, m *model.Model, cfg engine.Config, deadAfter time.Duration, hook *hookStep, stages ...string) (*engine.Engine, *recorder) {
	t.Helper()
	cfg.BlockSize, cfg.LeaderLayers = 16, 2
	if cfg.MaxBatchTokens == 0 {
		cfg.MaxBatchTokens = 256
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := DialPipeline(ctx, PipelineConfig{Stages: stages, Model: m.Identity(), FirstLayer: 2,
		BlockSize: 16, NumBlocks: cfg.NumBlocks, KVDType: blocks.FP32, MaxTokens: cfg.MaxBatchTokens, Pipeline: "p0", DeadAfter: deadAfter, Heartbeat: deadAfter / 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	rec := &recorder{Downstream: client}
	cfg.Downstream, cfg.Logger = rec, quiet
	if hook != nil {
		hook.Downstream = rec
		cfg.Downstream = hook
	}
	e, err := engine.New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(context.Background()) })
	return e, rec
}

// recorder counts what passes through a Downstream: steps, copy-on-write copies sent, and
// failed steps.
type recorder struct {
	engine.Downstream
	mu                   sync.Mutex // protects the counts
	steps, copies, fails int
}

func (r *recorder) Send(ctx context.Context, st *engine.StageStep) error {
	err := r.Downstream.Send(ctx, st)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps++
	r.copies += len(st.Copies)
	if err != nil {
		r.fails++
	}
	return err
}

func (r *recorder) Recv(ctx context.Context) ([]int, error) {
	tokens, err := r.Downstream.Recv(ctx)
	if err != nil {
		r.mu.Lock()
		r.fails++
		r.mu.Unlock()
	}
	return tokens, err
}

func (r *recorder) counts() (steps, copies, fails int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.steps, r.copies, r.fails
}

// submitAll submits every case (the first with n=2) and checks the outputs against the
// reference; both samples of the n=2 case are greedy, so both equal it.
func submitAll(t *testing.T, e *engine.Engine, cases []refCase) {
	t.Helper()
	chans := make([]<-chan engine.Event, len(cases))
	for i, c := range cases {
		req := requestOf(c)
		if i == 0 {
			req.N = 2
		}
		var err error
		if chans[i], err = e.Submit(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	for i, ch := range chans {
		got := make([][]int, 2)
		for ev := range ch {
			if ev.Err != nil {
				t.Fatalf("case %d: %v", i, ev.Err)
			}
			if ev.Finish == "" {
				got[ev.Index] = append(got[ev.Index], ev.Token)
			}
		}
		for j, g := range got {
			if (j == 0 || i == 0) && fmt.Sprint(g) != fmt.Sprint(cases[i].Tokens()) {
				t.Errorf("case %q sample %d:\n got %v\nwant %v", cases[i].Prompt, j, g, cases[i].Tokens())
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for st := e.Stats(); st.BlocksFree != st.BlocksTotal; st = e.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d blocks free after all requests", st.BlocksFree, st.BlocksTotal)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStagePipelineMatchesReference is TestPipelineMatchesReference over gRPC: the leader
// runs layers [0, 2), stage servers on loopback sockets run [2, 3) and [3, 5); every
// reference case matches, with a fork (n=2) and with chunked prefill and preemption,
// whose copy-on-write copies must reach both stages.
func TestStagePipelineMatchesReference(t *testing.T) {
	m := loadModel(t)
	cases := referenceCases(t)
	for _, tt := range []struct {
		name string
		cfg  engine.Config
	}{
		{"batched", engine.Config{NumBlocks: 512}},
		{"chunked and preempted", engine.Config{NumBlocks: 48, MaxBatchTokens: 16, PrefillChunk: 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			last := startStage(t, m, Range{3, 5}, "127.0.0.1:0")
			mid := startStage(t, m, Range{2, 3}, "127.0.0.1:0")
			e, rec := pipeline(t, m, tt.cfg, mid.addr, last.addr)
			submitAll(t, e, cases)
			if steps, copies, fails := rec.counts(); copies == 0 || fails > 0 {
				t.Errorf("%d steps, %d copies, %d failed: want copies (the fork's) and no failure", steps, copies, fails)
			}
			if st := e.Stats(); tt.cfg.NumBlocks == 48 && st.Preemptions == 0 {
				t.Errorf("no preemption with 48 blocks: %+v", st)
			}
		})
	}
}

// hookStep runs fn before the step numbered at (counting from 1) goes down the pipeline.
type hookStep struct {
	engine.Downstream
	at, n int
	fn    func()
}

func (h *hookStep) Send(ctx context.Context, st *engine.StageStep) error {
	if h.n++; h.n == h.at {
		h.fn()
	}
	return h.Downstream.Send(ctx, st)
}

// failRunning submits c, makes fault happen at its 20th step (in the engine's loop, while
// the step is sent), and returns the time from the fault to the request's ErrPipeline.
func failRunning(t *testing.T, e *engine.Engine, hook *hookStep, c refCase, fault func()) time.Duration {
	t.Helper()
	var (
		mu    sync.Mutex // protects start
		start time.Time
	)
	hook.n, hook.at = 0, 20
	hook.fn = func() {
		mu.Lock()
		start = time.Now()
		mu.Unlock()
		go fault() // the step goes out while the fault happens
	}
	ch, err := e.Submit(context.Background(), requestOf(c))
	if err != nil {
		t.Fatal(err)
	}
	var last engine.Event
	tokens := 0
	for ev := range ch {
		last = ev
		if ev.Err == nil && ev.Finish == "" {
			tokens++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(last.Err, engine.ErrPipeline) || start.IsZero() {
		t.Fatalf("after %d tokens: last event %+v, want ErrPipeline after the fault", tokens, last)
	}
	return time.Since(start)
}

// TestStageKilled: a stage's server stops while a request generates; the request ends
// with engine.ErrPipeline within a second; a new server on the same address takes its
// place, and new requests match the reference.
func TestStageKilled(t *testing.T) {
	m := loadModel(t)
	cases := referenceCases(t)
	for _, killed := range []Range{{3, 5}, {2, 3}} {
		t.Run(killed.String(), func(t *testing.T) {
			stages := map[Range]*stage{{3, 5}: startStage(t, m, Range{3, 5}, "127.0.0.1:0")}
			stages[Range{2, 3}] = startStage(t, m, Range{2, 3}, "127.0.0.1:0")
			hook := &hookStep{}
			e, rec := pipelineWith(t, m, engine.Config{NumBlocks: 512}, 0, hook, stages[Range{2, 3}].addr, stages[Range{3, 5}].addr)
			took := failRunning(t, e, hook, cases[0], stages[killed].stop)
			t.Logf("stopping stage %v failed the running request after %v", killed, took)
			if took > time.Second {
				t.Errorf("the request failed %v after the stage stopped, want < 1 s", took)
			}
			startStage(t, m, killed, stages[killed].addr)
			submitAll(t, e, cases[:4])
			if _, _, fails := rec.counts(); fails != 1 {
				t.Errorf("%d failed steps, want 1", fails)
			}
		})
	}
}

// TestStageHung: the network between the stages stops carrying bytes (a frozen proxy)
// while a request generates: after DeadAfter without a reply or a heartbeat the request
// ends with engine.ErrPipeline; once the network carries bytes again, new requests match the
// reference over a new session.
func TestStageHung(t *testing.T) {
	m := loadModel(t)
	cases := referenceCases(t)
	last := startStage(t, m, Range{3, 5}, "127.0.0.1:0")
	p := newFreezer(t, last.addr)
	mid := startStage(t, m, Range{2, 3}, "127.0.0.1:0")
	hook := &hookStep{}
	const timeout = time.Second
	e, _ := pipelineWith(t, m, engine.Config{NumBlocks: 512}, timeout, hook, mid.addr, p.addr)
	took := failRunning(t, e, hook, cases[0], p.freeze)
	t.Logf("a hung stage failed the running request after %v (DeadAfter %v)", took, timeout)
	if took < timeout || took > timeout+500*time.Millisecond {
		t.Errorf("the request failed %v after the network froze, want DeadAfter %v (+0.5 s)", took, timeout)
	}
	p.thaw()
	submitAll(t, e, cases[:4])
}

// TestStageSlow: steps that take longer than DeadAfter at the last stage succeed, since
// its heartbeats, relayed by the middle stage, show it alive.
func TestStageSlow(t *testing.T) {
	m := loadModel(t)
	last := startStageWith(t, StageServerConfig{Model: m, Range: Range{3, 5}}, "127.0.0.1:0",
		func(s *StageServer) { s.testDelay = 700 * time.Millisecond })
	mid := startStage(t, m, Range{2, 3}, "127.0.0.1:0")
	// One micro-batch, so that the request's two samples take exactly two steps.
	e, rec := pipelineWith(t, m, engine.Config{NumBlocks: 64, MicroBatches: 1}, 300*time.Millisecond, nil, mid.addr, last.addr)
	c := referenceCases(t)[1]
	c.Steps = len(c.PromptIDs) + 1 // two steps: the prompt and one more token
	c.GeneratedIDs = c.GeneratedIDs[:2]
	submitAll(t, e, []refCase{c})
	if steps, _, fails := rec.counts(); steps != 2 || fails != 0 {
		t.Errorf("%d steps, %d failed; want 2 and none", steps, fails)
	}
}

// freezer is a TCP proxy to a stage whose forwarding can be stopped: a network fault
// that leaves the connections open but carries no bytes.
type freezer struct {
	addr   string
	target string
	gate   sync.RWMutex // held for writing while frozen; forwarding holds it for reading
}

func newFreezer(t testing.TB, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezer{addr: ln.Addr().String(), target: target}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			conns.Add(2)
			go func() { defer conns.Done(); p.pipe(d, c) }()
			go func() { defer conns.Done(); p.pipe(c, d) }()
		}
	}()
	return p
}

// pipe copies src to dst while not frozen, and closes both at the end.
func (p *freezer) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezer) freeze() { p.gate.Lock() }
func (p *freezer) thaw()   { p.gate.Unlock() }

// TestDialPipelineRefused: a chain that does not fit the leader fails DialPipeline with
// ErrStageRefused, an unusable config with ErrStageConfig, an address where nothing
// listens with ErrStageBroken.
func TestDialPipelineRefused(t *testing.T) {
	m := loadModel(t)
	last := startStage(t, m, Range{3, 5}, "127.0.0.1:0")
	mid := startStage(t, m, Range{2, 3}, "127.0.0.1:0")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := ln.Addr().String()
	ln.Close()
	ok := PipelineConfig{Stages: []string{mid.addr, last.addr}, Model: m.Identity(), FirstLayer: 2, BlockSize: 16, NumBlocks: 32,
		HelloTimeout: 300 * time.Millisecond, Logger: quiet}
	for _, tt := range []struct {
		name string
		edit func(*PipelineConfig)
		want error
	}{
		{"another model", func(c *PipelineConfig) { c.Model = "feed" }, ErrStageRefused},
		{"leader ends early", func(c *PipelineConfig) { c.FirstLayer = 1 }, ErrStageRefused},
		{"a stage missing", func(c *PipelineConfig) { c.Stages = c.Stages[:1] }, ErrStageRefused},
		{"stages swapped", func(c *PipelineConfig) { c.Stages = []string{last.addr, mid.addr} }, ErrStageRefused},
		{"nothing listens", func(c *PipelineConfig) { c.Stages = []string{nobody} }, ErrStageBroken},
		{"next stage gone", func(c *PipelineConfig) { c.Stages = []string{mid.addr, nobody} }, ErrStageBroken},
		{"no stages", func(c *PipelineConfig) { c.Stages = nil }, ErrStageConfig},
		{"no model", func(c *PipelineConfig) { c.Model = "" }, ErrStageConfig},
		{"leader holds nothing", func(c *PipelineConfig) { c.FirstLayer = 0 }, ErrStageConfig},
		{"no blocks", func(c *PipelineConfig) { c.NumBlocks = 0 }, ErrStageConfig},
		{"bad dtype", func(c *PipelineConfig) { c.KVDType = blocks.DType(9) }, ErrStageConfig},
		{"heartbeat too slow", func(c *PipelineConfig) { c.Heartbeat, c.DeadAfter = time.Second, time.Second }, ErrStageConfig},
		{"cache too large", func(c *PipelineConfig) { c.NumBlocks = 1 << 30 }, ErrStageRefused},
		{"bad CA file", func(c *PipelineConfig) { c.TLS.CAFile = "testdata/missing.pem" }, ErrStageConfig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			c, err := DialPipeline(context.Background(), cfg)
			if c != nil {
				c.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	c, err := DialPipeline(context.Background(), ok)
	if err != nil {
		t.Fatalf("the right chain after the refusals: %v", err)
	}
	c.Close()
}
