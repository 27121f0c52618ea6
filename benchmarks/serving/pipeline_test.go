package serving

import (
	"context"
	"testing"

	"github.com/kvmesh/kvmesh/internal/testmodel"
	"github.com/kvmesh/kvmesh/model/ckpt"
)

// TestPipeline runs a small comparison on the test model: every pipeline run generates the
// single engine's tokens (Measure fails otherwise) and reports a throughput.
func TestPipeline(t *testing.T) {
	m := testmodel.Load(t)
	res, err := Pipeline(context.Background(), m, PipelineConfig{Seqs: 4, Tokens: 16, MicroBatches: []int{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 4 {
		t.Fatalf("%d runs, want 4", len(res.Runs))
	}
	for _, r := range res.Runs {
		if r.Tokens != 4*16 || r.TokPerSec <= 0 || r.Ratio <= 0 {
			t.Errorf("run %+v: want 64 tokens at a positive rate", r)
		}
	}
}

func TestPipelineConfigRejects(t *testing.T) {
	m := testmodel.Load(t)
	for _, cfg := range []PipelineConfig{
		{Threads: 1},
		{Split: 5},
		{Split: -1},
		{Tokens: 10000},
		{Seqs: -1},
	} {
		if _, err := Pipeline(context.Background(), m, cfg); err == nil {
			t.Errorf("Pipeline(%+v) = nil error", cfg)
		}
	}
}

func TestBalancedSplit(t *testing.T) {
	for _, tt := range []struct {
		name                                  string
		layers, dim, hidden, heads, kv, vocab int
		want                                  int
	}{
		// llama2c-15m: a layer is 1.0M weights, the classifier 9.2M: the stage takes one layer.
		{"15m", 6, 288, 768, 6, 6, 32000, 5},
		// llama2c-42m: 3.2M a layer, 16.4M the classifier.
		{"42m", 8, 512, 1376, 8, 8, 32000, 7},
		// llama2c-110m: 7.1M a layer, 24.6M the classifier.
		{"110m", 12, 768, 2048, 12, 12, 32000, 8},
		// No classifier to speak of: half and half.
		{"tiny vocab", 4, 64, 128, 4, 4, 1, 2},
	} {
		c := ckpt.Config{Layers: tt.layers, Dim: tt.dim, HiddenDim: tt.hidden, Heads: tt.heads, KVHeads: tt.kv, Vocab: tt.vocab}
		if got := balancedSplit(c); got != tt.want {
			t.Errorf("%s: balancedSplit = %d, want %d", tt.name, got, tt.want)
		}
	}
}
