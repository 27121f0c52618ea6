package shard

import (
	"context"
	"testing"

	"github.com/kvmesh/kvmesh/internal/testmodel"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
)

// TestPipelineMatchesReference runs every reference case through an engine that leads a
// pipeline of three stages in this process: outputs equal llama2.c's, also with forks,
// chunked prefill and preemption, and with one to four micro-batches in flight.
func TestPipelineMatchesReference(t *testing.T) {
	m := testmodel.Load(t)
	for _, tt := range []struct {
		name     string
		cfg      engine.Config
		preempts bool
	}{
		{"batched", engine.Config{NumBlocks: 512}, false},
		{"chunked and preempted", engine.Config{NumBlocks: 48, MaxBatchTokens: 16, PrefillChunk: 5}, true},
		{"one micro-batch", engine.Config{NumBlocks: 512, MicroBatches: 1}, false},
		{"four micro-batches, preempted", engine.Config{NumBlocks: 40, MaxBatchTokens: 24, PrefillChunk: 7, MicroBatches: 4}, true},
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
				chain.Stages = append(chain.Stages, st)
			}
			cfg.Downstream = &chain
			e, err := engine.New(m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Shutdown(context.Background())
			submitAll(t, e, referenceCases(t))
			if st := e.Stats(); tt.preempts && st.Preemptions == 0 {
				t.Errorf("no preemption: %+v", st)
			}
		})
	}
}
