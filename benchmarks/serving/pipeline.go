package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/sample"
	"github.com/kvmesh/kvmesh/model/tensor"
	"github.com/kvmesh/kvmesh/shard"
)

// PipelineConfig is one comparison. Zero values take the documented defaults.
type PipelineConfig struct {
	// Seqs is how many sequences decode at once. Default 16.
	Seqs int
	// Tokens is how many tokens each sequence generates. Default 64.
	Tokens int
	// Prompt is the length of each (random) prompt. Default 8.
	Prompt int
	// Threads is the thread budget: the single engine's threads, split between the
	// leader and the stage. Default 2.
	Threads int
	// Split is the number of layers the leader runs. Default: the split that balances
	// the weights each side reads per token (the last stage also reads the classifier).
	Split int
	// MicroBatches lists the pipeline runs, by micro-batches in flight. Default [1 2].
	MicroBatches []int
	// BlockSize is the KV block size. Default 16.
	BlockSize int
	// Seed makes the prompts and the sampling. Default 1.
	Seed uint64
	// Repeat is how many times each run goes, alternating; the fastest counts. Default 1.
	Repeat int
}

func (c *PipelineConfig) validate(m *model.Model) error {
	if c.Seqs == 0 {
		c.Seqs = 16
	}
	if c.Tokens == 0 {
		c.Tokens = 64
	}
	if c.Prompt == 0 {
		c.Prompt = 8
	}
	if c.Threads == 0 {
		c.Threads = 2
	}
	if c.Split == 0 {
		c.Split = balancedSplit(m.Config)
	}
	if len(c.MicroBatches) == 0 {
		c.MicroBatches = []int{1, 2}
	}
	if c.BlockSize == 0 {
		c.BlockSize = 16
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Repeat == 0 {
		c.Repeat = 1
	}
	switch {
	case c.Seqs < 1 || c.Tokens < 1 || c.Prompt < 1 || c.Repeat < 1:
		return fmt.Errorf("serving: pipeline: seqs, tokens, prompt and repeat must be positive")
	case c.Threads < 2:
		return fmt.Errorf("serving: pipeline: %d threads cannot be split between two stages", c.Threads)
	case c.Split < 1 || c.Split >= m.Config.Layers:
		return fmt.Errorf("serving: pipeline: split %d of a %d-layer model", c.Split, m.Config.Layers)
	case c.Prompt+c.Tokens > m.Config.SeqLen:
		return fmt.Errorf("serving: pipeline: %d tokens past the context of %d", c.Prompt+c.Tokens, m.Config.SeqLen)
	}
	return nil
}

// balancedSplit is the number of leader layers that minimises the larger side's weights:
// the leader's layers against the stage's layers and the classifier.
func balancedSplit(c ckpt.Config) int {
	layer := 2*c.Dim*c.Dim + 2*c.Dim*c.KVDim() + 3*c.Dim*c.HiddenDim
	head := c.Vocab * c.Dim
	best, cost := 1, math.MaxInt
	for s := 1; s < c.Layers; s++ {
		if x := max(s*layer, (c.Layers-s)*layer+head); x < cost {
			best, cost = s, x
		}
	}
	return best
}

// PipelineRun is one decode run.
type PipelineRun struct {
	Name         string  `json:"name"`
	MicroBatches int     `json:"micro_batches,omitempty"`
	Seconds      float64 `json:"seconds"`
	Tokens       int     `json:"tokens"`
	TokPerSec    float64 `json:"tok_per_s"`
	Ratio        float64 `json:"ratio"` // TokPerSec over the single engine's
}

// PipelineResult is a comparison: the single engine first, then one run per micro-batch count.
type PipelineResult struct {
	Seqs, Threads, Split int
	Runs                 []PipelineRun
}

// Pipeline decodes the same requests on a single engine and on two-stage pipelines.
func Pipeline(ctx context.Context, m *model.Model, cfg PipelineConfig) (PipelineResult, error) {
	if err := cfg.validate(m); err != nil {
		return PipelineResult{}, err
	}
	reqs := pipelineRequests(m, cfg)
	res := PipelineResult{Seqs: cfg.Seqs, Threads: cfg.Threads, Split: cfg.Split}
	// Room for every sequence, and at least one full-context sequence (the engine's floor).
	numBlocks := max(cfg.Seqs*((cfg.Prompt+cfg.Tokens)/cfg.BlockSize+2), (m.Config.SeqLen+cfg.BlockSize-1)/cfg.BlockSize+1)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ecfg := engine.Config{BlockSize: cfg.BlockSize, NumBlocks: numBlocks, MaxRunning: cfg.Seqs,
		MaxBatchTokens: cfg.Seqs * cfg.Prompt, NoPrefixCaching: true, Logger: quiet}

	single := ecfg
	single.Threads = cfg.Threads
	res.Runs = make([]PipelineRun, 1+len(cfg.MicroBatches))
	faster := func(i int, r PipelineRun) {
		if res.Runs[i].TokPerSec < r.TokPerSec {
			res.Runs[i] = r
		}
	}
	for range cfg.Repeat {
		e, err := engine.New(m, single)
		if err != nil {
			return res, err
		}
		base, want, err := decodeAll(ctx, e, reqs)
		if err != nil {
			return res, fmt.Errorf("single engine: %w", err)
		}
		base.Name = "single process"
		faster(0, base)
		for i, mb := range cfg.MicroBatches {
			run, got, err := pipelined(ctx, m, cfg, ecfg, mb, reqs, quiet)
			if err != nil {
				return res, fmt.Errorf("pipeline, %d micro-batches: %w", mb, err)
			}
			if !slices.EqualFunc(got, want, slices.Equal) {
				return res, fmt.Errorf("pipeline, %d micro-batches: generated other tokens than the single engine", mb)
			}
			faster(1+i, run)
		}
	}
	base := res.Runs[0]
	for i := range res.Runs {
		res.Runs[i].Ratio = res.Runs[i].TokPerSec / base.TokPerSec
	}
	return res, nil
}

// pipelined runs reqs on a leader of cfg.Split layers and a stage server on loopback.
func pipelined(ctx context.Context, m *model.Model, cfg PipelineConfig, ecfg engine.Config, mb int, reqs []engine.Request, log *slog.Logger) (PipelineRun, [][]int, error) {
	leaderThreads := cfg.Threads / 2
	pool := tensor.NewPool(cfg.Threads - leaderThreads)
	defer pool.Close()
	srv, err := shard.NewStageServer(shard.StageServerConfig{Model: m, Range: shard.Range{First: cfg.Split, Last: m.Config.Layers}, Pool: pool, Logger: log})
	if err != nil {
		return PipelineRun{}, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return PipelineRun{}, nil, err
	}
	go srv.Serve(ln)
	defer srv.Stop()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client, err := shard.DialPipeline(dctx, shard.PipelineConfig{Stages: []string{ln.Addr().String()}, Model: m.Identity(),
		FirstLayer: cfg.Split, BlockSize: ecfg.BlockSize, NumBlocks: ecfg.NumBlocks, KVDType: blocks.FP32,
		MaxTokens: ecfg.MaxBatchTokens, Logger: log})
	if err != nil {
		return PipelineRun{}, nil, err
	}
	defer client.Close()
	ecfg.Threads, ecfg.Downstream, ecfg.LeaderLayers, ecfg.MicroBatches = leaderThreads, client, cfg.Split, mb
	e, err := engine.New(m, ecfg)
	if err != nil {
		return PipelineRun{}, nil, err
	}
	run, out, err := decodeAll(ctx, e, reqs)
	run.Name, run.MicroBatches = "two stages, loopback gRPC", mb
	return run, out, err
}

// requests makes cfg.Seqs requests of random prompts, sampled with seeds so that no
// sequence ends early on a greedy loop, and with no stop token but the model's BOS.
func pipelineRequests(m *model.Model, cfg PipelineConfig) []engine.Request {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	reqs := make([]engine.Request, cfg.Seqs)
	for i := range reqs {
		prompt := []int{1}
		for len(prompt) < cfg.Prompt {
			prompt = append(prompt, 3+rng.IntN(m.Config.Vocab-3))
		}
		reqs[i] = engine.Request{Prompt: prompt, MaxTokens: cfg.Tokens, N: 1,
			Sampling: sample.Params{Temperature: 1, TopP: 1, Seed: cfg.Seed + uint64(i)}}
	}
	return reqs
}

// decodeAll runs reqs at once on e, shuts e down, and reports the throughput and every
// request's tokens.
func decodeAll(ctx context.Context, e *engine.Engine, reqs []engine.Request) (PipelineRun, [][]int, error) {
	start := time.Now()
	outs, err := run(ctx, e, reqs)
	secs := time.Since(start).Seconds()
	if serr := shutdown(e); err == nil {
		err = serr
	}
	if err != nil {
		return PipelineRun{}, nil, err
	}
	n := generated(outs)
	if n == 0 {
		return PipelineRun{}, nil, errors.New("serving: no token generated")
	}
	tokens := make([][]int, len(outs))
	for i, o := range outs {
		tokens[i] = o.tokens
	}
	return PipelineRun{Seconds: secs, Tokens: n, TokPerSec: float64(n) / secs}, tokens, nil
}
