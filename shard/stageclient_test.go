package shard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
)

// referenceCases is every greedy and sampled case of the shipped reference.
func referenceCases(t testing.TB) []refCase {
	t.Helper()
	data, err := os.ReadFile("../testdata/reference/stories260K_greedy.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ Greedy, Sampled []refCase }
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	return append(append([]refCase(nil), ref.Greedy...), ref.Sampled...)
}

func (c refCase) request() engine.Request {
	return engine.Request{
		Prompt: c.PromptIDs, MaxTokens: c.Steps - len(c.PromptIDs) + 1,
		Sampling: sample.Params{Temperature: c.Temperature, TopP: c.TopP, Seed: c.Seed},
	}
}

// want is run.c's generated ids without the BOS that ends a story.
func (c refCase) want() []int {
	if n := len(c.GeneratedIDs); n > 0 && c.GeneratedIDs[n-1] == 1 {
		return c.GeneratedIDs[:n-1]
	}
	return c.GeneratedIDs
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// pipeline is an engine leading layers [0, 2) of m over a StageClient to stages on
// stages (addresses in layer order).
func pipeline(t testing.TB, m *model.Model, cfg engine.Config, stages ...string) (*engine.Engine, *recorder) {
	t.Helper()
	cfg.BlockSize, cfg.LeaderLayers = 16, 2
	if cfg.MaxBatchTokens == 0 {
		cfg.MaxBatchTokens = 256
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := DialPipeline(ctx, PipelineConfig{Stages: stages, Model: m.Identity(), FirstLayer: 2,
		BlockSize: 16, NumBlocks: cfg.NumBlocks, KVDType: blocks.FP32, MaxTokens: cfg.MaxBatchTokens, Pipeline: "p0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	cfg.Downstream = &recorder{Downstream: client}
	e, err := engine.New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(context.Background()) })
	return e, cfg.Downstream.(*recorder)
}

// recorder counts what passes through a Downstream: steps, copy-on-write copies sent, and
// failed steps.
type recorder struct {
	engine.Downstream
	mu                   sync.Mutex // protects the counts
	steps, copies, fails int
}

func (r *recorder) Step(ctx context.Context, st *engine.StageStep) ([]int, error) {
	tokens, err := r.Downstream.Step(ctx, st)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps++
	r.copies += len(st.Copies)
	if err != nil {
		r.fails++
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
		req := c.request()
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
			if (j == 0 || i == 0) && fmt.Sprint(g) != fmt.Sprint(cases[i].want()) {
				t.Errorf("case %q sample %d:\n got %v\nwant %v", cases[i].Prompt, j, g, cases[i].want())
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
