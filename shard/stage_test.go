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
// chunked prefill and preemption.
func TestPipelineMatchesReference(t *testing.T) {
	m := testmodel.Load(t)
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
			submitAll(t, e, referenceCases(t))
		})
	}
}
