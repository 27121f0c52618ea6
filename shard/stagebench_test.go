package shard

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
)

// benchStep is a step of seqs sequences of length n, each running its last news tokens,
// with block tables of block size 16 laid out one after the other, and deterministic
// hidden states.
func benchStep(m *model.Model, seqs, n, news int) *engine.StageStep {
	rng := rand.New(rand.NewPCG(1, 2))
	st := &engine.StageStep{}
	next := 0
	for i := range seqs {
		nb := (n + 15) / 16
		tbl := make([]int, nb)
		for j := range tbl {
			tbl[j] = next
			next++
		}
		st.Seqs = append(st.Seqs, engine.StageSeq{Blocks: tbl, Len: n, New: news})
		st.Samples = append(st.Samples, engine.SampleSpec{Row: i})
	}
	st.Hidden = make([]float32, seqs*news*m.Config.Dim) // (tokens, dim)
	for i := range st.Hidden {
		st.Hidden[i] = float32(rng.NormFloat64())
	}
	return st
}

// BenchmarkStageStep: one step through the stages [2, 3) and [3, 5), in process (Chain)
// and over gRPC on loopback (StageClient → StageServer → StageServer); the difference is
// the cost of the two hops.
//
//	go test ./shard -run '^$' -bench StageStep -benchtime 2s
func BenchmarkStageStep(b *testing.B) {
	m := loadModel(b)
	for _, shape := range []struct {
		name          string
		seqs, n, news int
	}{
		{"decode1", 1, 64, 1},
		{"decode8", 8, 64, 1},
		{"decode32", 32, 64, 1},
		{"prefill128", 1, 128, 128},
	} {
		st := benchStep(m, shape.seqs, shape.n, shape.news)
		const numBlocks = 256
		b.Run(shape.name+"/chain", func(b *testing.B) {
			var chain Chain
			for _, r := range []Range{{2, 3}, {3, 5}} {
				s, err := NewRunner(RunnerConfig{Model: m, Range: r, BlockSize: 16, NumBlocks: numBlocks, KVDType: blocks.FP32})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				chain.Stages = append(chain.Stages, s)
			}
			runBench(b, &chain, st)
		})
		b.Run(shape.name+"/grpc", func(b *testing.B) {
			last := startStage(b, m, Range{3, 5}, "127.0.0.1:0")
			mid := startStage(b, m, Range{2, 3}, "127.0.0.1:0")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := DialPipeline(ctx, PipelineConfig{Stages: []string{mid.addr, last.addr}, Model: m.Identity(), FirstLayer: 2,
				BlockSize: 16, NumBlocks: numBlocks, KVDType: blocks.FP32, MaxTokens: 256, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			runBench(b, c, st)
		})
	}
}

// stepper runs one step and waits for its tokens (Chain, StageClient).
type stepper interface {
	Step(ctx context.Context, st *engine.StageStep) ([]int, error)
}

func runBench(b *testing.B, d stepper, st *engine.StageStep) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Step(context.Background(), st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}
