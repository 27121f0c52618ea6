package pipeline

import (
	"context"
	"testing"

	"github.com/kvmesh/kvmesh/internal/testmodel"
)

// TestMeasure runs a small comparison on the test model: every pipeline run generates the
// single engine's tokens (Measure fails otherwise) and reports a throughput.
func TestMeasure(t *testing.T) {
	m := testmodel.Load(t)
	res, err := Measure(context.Background(), m, Config{Seqs: 4, Tokens: 16, MicroBatches: []int{1, 2, 3}})
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

func TestConfigRejects(t *testing.T) {
	m := testmodel.Load(t)
	for _, cfg := range []Config{
		{Threads: 1},
		{Split: 5},
		{Split: -1},
		{Tokens: 10000},
		{Seqs: -1},
	} {
		if _, err := Measure(context.Background(), m, cfg); err == nil {
			t.Errorf("Measure(%+v) = nil error", cfg)
		}
	}
}
