package shard

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/sample"
)

type refCase struct {
	Prompt       string  `json:"prompt"`
	Temperature  float32 `json:"temperature"`
	TopP         float32 `json:"top_p"`
	Seed         uint64  `json:"seed"`
	Steps        int     `json:"steps"`
	PromptIDs    []int   `json:"prompt_ids"`
	GeneratedIDs []int   `json:"generated_ids"`
}

// TestPipelineMatchesReference runs every reference case through an engine that leads a
// pipeline of three stages in this process: outputs equal llama2.c's, also with forks,
// chunked prefill and preemption.
func TestPipelineMatchesReference(t *testing.T) {
	data, err := os.ReadFile("../testdata/reference/stories260K_greedy.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ Greedy, Sampled []refCase }
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	ck, err := ckpt.Open("../models/stories260K.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := model.New(ck)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  engine.Config
	}{
		{"batched", engine.Config{NumBlocks: 512}},
		{"chunked and preempted", engine.Config{NumBlocks: 48, MaxBatchTokens: 16, PrefillChunk: 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.BlockSize, cfg.LeaderLayers = 16, 2
			var chain Chain
			for _, r := range []Range{{2, 3}, {3, 5}} {
				st, err := NewRunner(RunnerConfig{Model: m, Range: r, BlockSize: 16, NumBlocks: cfg.NumBlocks, KVDType: blocks.FP32})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				chain = append(chain, st)
			}
			cfg.Downstream = chain
			e, err := engine.New(m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Shutdown(context.Background())
			cases := append(append([]refCase(nil), ref.Greedy...), ref.Sampled...)
			chans := make([]<-chan engine.Event, len(cases))
			for i, c := range cases {
				req := engine.Request{
					Prompt: c.PromptIDs, MaxTokens: c.Steps - len(c.PromptIDs) + 1,
					Sampling: sample.Params{Temperature: c.Temperature, TopP: c.TopP, Seed: c.Seed},
				}
				if i == 0 {
					req.N = 2 // a fork: both samples are greedy, so both equal the reference
				}
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
				want := cases[i].GeneratedIDs
				if n := len(want); want[n-1] == 1 {
					want = want[:n-1]
				}
				for j, g := range got {
					if (j == 0 || i == 0) && fmt.Sprint(g) != fmt.Sprint(want) {
						t.Errorf("case %q sample %d:\n got %v\nwant %v", cases[i].Prompt, j, g, want)
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
		})
	}
}
