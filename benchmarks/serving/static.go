package serving

import (
	"context"
	"fmt"
	"slices"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
	"github.com/kvmesh/kvmesh/model/tensor"
)

// StaticTarget is the least ratio of the engine's request throughput to static batching's.
const StaticTarget = 2.0

// StaticConfig configures Static. Zero values take the documented defaults.
type StaticConfig struct {
	// Mix is the workload; its defaults are Mix's.
	Mix Mix
	// BlockSize is the tokens per KV block of both. Default 16.
	BlockSize int
	// Batch sets the KV memory budget of both: Batch reservations of the mix's longest
	// sequence (prompt maximum + max_tokens maximum), in blocks. Static batching runs
	// batches of exactly Batch requests. Default 8.
	Batch int
	// Threads is the number of kernel threads of both. Default: one per core.
	Threads int
	// Repeat is the number of runs of each, alternating. Default 1.
	Repeat int
}

func (c *StaticConfig) validate(m *model.Model) error {
	if c.BlockSize == 0 {
		c.BlockSize = 16
	}
	if c.Batch == 0 {
		c.Batch = 8
	}
	if c.Repeat == 0 {
		c.Repeat = 1
	}
	if c.BlockSize < 1 || c.Batch < 1 || c.Repeat < 1 {
		return fmt.Errorf("%w: block size %d, batch %d", ErrConfig, c.BlockSize, c.Batch)
	}
	if err := c.Mix.validate(m.Config.SeqLen); err != nil {
		return err
	}
	if need := blocksFor(m.Config.SeqLen, c.BlockSize); c.Batch*blocksFor(c.Mix.maxLen(), c.BlockSize) < need {
		return fmt.Errorf("%w: %d reservations of %d tokens are fewer blocks than the engine's minimum of one full context (%d)",
			ErrConfig, c.Batch, c.Mix.maxLen(), need)
	}
	return nil
}

// StaticResult compares the engine's throughput with static batching's on the same
// requests and the same number of KV blocks.
type StaticResult struct {
	Requests  int `json:"requests"`
	BlockSize int `json:"block_size"`
	Blocks    int `json:"kv_blocks"`
	Batch     int `json:"static_batch"`
	// Engine and Static are each side's fastest run; EngineSeconds and StaticSeconds the
	// wall times of all runs.
	Engine        Rate      `json:"engine"`
	Static        Rate      `json:"static"`
	EngineSeconds []float64 `json:"engine_seconds"`
	StaticSeconds []float64 `json:"static_seconds"`
	// Ratio is the engine's requests/s over static batching's.
	Ratio float64 `json:"ratio"`
	// CPURatio is the engine's requests per CPU-second over static batching's.
	CPURatio float64 `json:"cpu_ratio"`
	// TokensRatio is the engine's generated tokens/s over static batching's.
	TokensRatio float64 `json:"tokens_ratio"`
	// EngineBatch and StaticBatch are the mean sequences per forward step (the engine's
	// from its step count, which also counts idle snapshots; static batching's exact).
	EngineBatch float64 `json:"engine_mean_batch"`
	StaticBatch float64 `json:"static_mean_batch"`
	// OutputMean and OutputMax are the mean and the longest output in tokens; Stopped
	// counts the requests that ended before max_tokens and the context's end (at BOS or a
	// stop token). They describe the workload: maximum-length reservation wastes what
	// outputs leave of max_tokens.
	OutputMean float64 `json:"output_mean"`
	OutputMax  int     `json:"output_max"`
	Stopped    int     `json:"stopped_early"`
	// Preemptions is the number of sequences the engine preempted for lack of blocks.
	Preemptions int64 `json:"engine_preemptions"`
	// OutputsDiffer counts requests whose tokens differ between the two. Both sample as a
	// function of seed and position, so it is 0 when the forward pass gives bit-identical
	// logits whatever the batch; a difference is a rounding difference between batch
	// shapes that sampling amplified.
	OutputsDiffer int     `json:"outputs_differ"`
	Target        float64 `json:"target"`
	Pass          bool    `json:"pass"`
}

// Static runs cfg.Mix on the same number of KV blocks through static batching
// (staticBatching) and through the engine with every request submitted at once,
// alternating Repeat times; each side's fastest run counts (another process loading the
// machine only ever slows a run down).
func Static(ctx context.Context, m *model.Model, cfg StaticConfig) (StaticResult, error) {
	if err := cfg.validate(m); err != nil {
		return StaticResult{}, err
	}
	reqs := cfg.Mix.build(m.Config.Vocab)
	bs := cfg.BlockSize
	numBlocks := cfg.Batch * blocksFor(cfg.Mix.maxLen(), bs)
	res := StaticResult{Requests: len(reqs), BlockSize: bs, Blocks: numBlocks, Batch: cfg.Batch, Target: StaticTarget}

	var static staticRun
	var engineTokens [][]int
	for range cfg.Repeat {
		c := startClock()
		sr, err := staticBatching(ctx, m, reqs, cfg.Batch, numBlocks, bs, cfg.Threads)
		if err != nil {
			return res, err
		}
		r := c.rate(len(reqs), countTokens(sr.tokens))
		res.StaticSeconds = append(res.StaticSeconds, r.Seconds)
		if res.Static.Seconds == 0 || r.Seconds < res.Static.Seconds {
			res.Static, static = r, sr
		}

		r, toks, st, err := engineRun(ctx, m, reqs, bs, numBlocks, cfg.Threads)
		if err != nil {
			return res, err
		}
		res.EngineSeconds = append(res.EngineSeconds, r.Seconds)
		if res.Engine.Seconds == 0 || r.Seconds < res.Engine.Seconds {
			res.Engine, engineTokens, res.Preemptions = r, toks, st.Preemptions
			if st.Steps > 0 {
				res.EngineBatch = float64(r.Tokens) / float64(st.Steps)
			}
		}
	}
	if static.steps > 0 {
		res.StaticBatch = float64(static.seqs) / float64(static.steps)
	}
	for i, toks := range engineTokens {
		if !slices.Equal(toks, static.tokens[i]) {
			res.OutputsDiffer++
		}
	}
	for i, toks := range static.tokens {
		res.OutputMax = max(res.OutputMax, len(toks))
		if len(toks) < reqs[i].MaxTokens && len(reqs[i].Prompt)+len(toks) < m.Config.SeqLen {
			res.Stopped++
		}
	}
	res.OutputMean = float64(countTokens(static.tokens)) / float64(len(reqs))
	if res.Static.RequestsS > 0 {
		res.Ratio = res.Engine.RequestsS / res.Static.RequestsS
		res.TokensRatio = res.Engine.TokensS / res.Static.TokensS
	}
	if res.Static.RequestsCPU > 0 {
		res.CPURatio = res.Engine.RequestsCPU / res.Static.RequestsCPU
	}
	res.Pass = res.Ratio >= StaticTarget
	return res, nil
}

// engineRun submits reqs at once to a new engine with numBlocks KV blocks and returns its
// rate, each request's tokens and its last snapshot.
func engineRun(ctx context.Context, m *model.Model, reqs []engine.Request, bs, numBlocks, threads int) (Rate, [][]int, engine.Stats, error) {
	e, err := engine.New(m, engine.Config{BlockSize: bs, NumBlocks: numBlocks, MaxWaiting: len(reqs), Threads: threads})
	if err != nil {
		return Rate{}, nil, engine.Stats{}, fmt.Errorf("serving: static: %w", err)
	}
	c := startClock()
	outs, err := run(ctx, e, reqs)
	r := c.rate(len(reqs), generated(outs))
	var st engine.Stats
	if err == nil {
		st, err = settle(ctx, e)
	}
	if serr := shutdown(e); err == nil {
		err = serr
	}
	if err != nil {
		return Rate{}, nil, st, err
	}
	toks := make([][]int, len(outs))
	for i, o := range outs {
		toks[i] = o.tokens
	}
	return r, toks, st, nil
}

func countTokens(toks [][]int) int {
	n := 0
	for _, t := range toks {
		n += len(t)
	}
	return n
}

// staticRun is what the static baseline did: each request's generated tokens, and its
// forward steps and the sequences they ran.
type staticRun struct {
	tokens      [][]int
	steps, seqs int
}

// staticMember is one request of a static batch.
type staticMember struct {
	req    engine.Request
	table  *blocks.Table
	tokens []int // prompt, then generated tokens
	done   bool
}

// staticBatching is the baseline: requests in arrival order, in fixed batches of batch.
// A batch is prefilled in one forward pass, then decodes one token per member per step
// until its longest member finishes; a finished member stops running but keeps its
// reservation, so the next batch starts only when the whole batch is done. The cache has
// numBlocks blocks, enough for batch reservations of the longest sequence, so a batch
// never runs out. Sampling is the engine's: the k-th token of a request is drawn with
// Sample(logits, params, k), and BOS, a stop token, max_tokens or the context's end
// finishes it.
func staticBatching(ctx context.Context, m *model.Model, reqs []engine.Request, batch, numBlocks, bs, threads int) (staticRun, error) {
	var sr staticRun
	bc := blocks.DefaultConfig()
	bc.Shape, bc.DType, bc.NumBlocks = m.KVShape(bs), blocks.FP32, numBlocks
	cache, err := blocks.New(bc)
	if err != nil {
		return sr, fmt.Errorf("serving: static baseline: %w", err)
	}
	longest := 0
	for _, r := range reqs {
		longest = max(longest, len(r.Prompt))
	}
	pool := tensor.NewPool(threads)
	defer pool.Close()
	runner := model.NewRunner(m, model.RunnerConfig{MaxTokens: max(batch*longest, batch), Pool: pool})
	defer runner.Close()
	smp := sample.New(m.Config.Vocab)
	vocab, seqLen := m.Config.Vocab, m.Config.SeqLen

	sr.tokens = make([][]int, len(reqs))
	members := make([]staticMember, 0, batch)
	fwd := make([]model.Seq, 0, batch)
	running := make([]*staticMember, 0, batch) // members of the current forward pass, in order
	for lo := 0; lo < len(reqs); lo += batch {
		members = members[:0]
		for _, r := range reqs[lo:min(lo+batch, len(reqs))] {
			members = append(members, staticMember{req: r, table: &blocks.Table{}, tokens: slices.Clone(r.Prompt)})
		}
		for step := 0; ; step++ {
			if err := ctx.Err(); err != nil {
				return sr, err
			}
			fwd, running = fwd[:0], running[:0]
			for i := range members {
				mb := &members[i]
				if mb.done {
					continue
				}
				feed := mb.tokens[len(mb.tokens)-1:]
				if step == 0 {
					feed = mb.tokens
				}
				if !cache.Append(mb.table, len(feed)) {
					panic("serving: static baseline ran out of its reserved KV blocks")
				}
				fwd = append(fwd, model.Seq{Table: mb.table, Tokens: feed})
				running = append(running, mb)
			}
			if len(fwd) == 0 {
				break
			}
			logits, err := runner.Forward(fwd, cache)
			if err != nil {
				return sr, fmt.Errorf("serving: static baseline: %w", err)
			}
			sr.steps++
			sr.seqs += len(fwd)
			for i, mb := range running {
				k := len(mb.tokens) - len(mb.req.Prompt)
				tok := smp.Sample(logits[i*vocab:(i+1)*vocab], mb.req.Sampling, k)
				if tok == bos || slices.Contains(mb.req.StopTokens, tok) {
					mb.done = true
					continue
				}
				mb.tokens = append(mb.tokens, tok)
				mb.done = k+1 >= mb.req.MaxTokens || len(mb.tokens) > seqLen
			}
		}
		for i := range members {
			mb := &members[i]
			cache.Release(mb.table)
			sr.tokens[lo+i] = mb.tokens[len(mb.req.Prompt):]
		}
	}
	return sr, nil
}
