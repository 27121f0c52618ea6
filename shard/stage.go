package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
	"github.com/kvmesh/kvmesh/model/tensor"
	"github.com/kvmesh/kvmesh/swap"
)

// RunnerConfig configures a Runner: a layer range after the leader's, and the mirror of the
// leader's KV cache for those layers.
type RunnerConfig struct {
	Model *model.Model
	// Range is the layers the stage runs; First > 0 (layer 0 is the leader's).
	Range Range
	// BlockSize, NumBlocks and KVDType must equal the leader's: the stage keeps its K/V at
	// the block ids the leader's scheduler allocates.
	BlockSize, NumBlocks int
	KVDType              blocks.DType
	// MaxTokens is the most tokens of one step. Default 512.
	MaxTokens int
	// Pool runs the kernels. Default: a pool of its own, one thread per core.
	Pool *tensor.Pool

	disk *stageDisk // the stage's disk tier; nil: none (a StageServer sets it)
}

// Runner runs one layer range of a pipeline over the steps its leader sends: it repeats the
// leader's copy-on-write copies and disk moves in its mirror cache, runs its layers, and
// returns the hidden states for the next stage or, if it holds the last layer, the
// sampled tokens. A Stage serves one pipeline and one step at a time.
//
// It tracks which blocks it has written (computed, copied or loaded) since it was made,
// and refuses a step that reads a block it never wrote: the leader's cache then holds
// K/V from another session, which this cache cannot have.
type Runner struct {
	runner *model.Runner
	cache  *blocks.Cache
	smp    *sample.Sampler
	vocab  int
	last   bool
	batch  []model.Seq // the current step's sequences
	zeros  []int       // (MaxTokens) token ids for the runner: a later stage reads no ids
	row    []float32   // (vocab) scratch for samples that share a row
	tokens []int

	disk    *stageDisk   // nil without a disk tier
	written []bool       // (NumBlocks) the block holds K/V this Runner wrote, copied or loaded
	saves   []swap.Entry // a step's saves, written in one batch
	buf     []byte       // one block's payload, for loads
}

// NewRunner allocates a stage's runner and mirror cache.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	m := cfg.Model
	layers := m.Config.Layers
	if cfg.Range.First < 1 || cfg.Range.Last > layers || cfg.Range.First >= cfg.Range.Last {
		return nil, fmt.Errorf("%w: stage range %v of a %d-layer model (layer 0 is the leader's)", ErrRange, cfg.Range, layers)
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 512
	}
	bc := blocks.DefaultConfig()
	bc.Shape = m.KVShape(cfg.BlockSize)
	bc.Shape.Layers = cfg.Range.Len()
	bc.DType, bc.NumBlocks, bc.Mirror = cfg.KVDType, cfg.NumBlocks, true
	cache, err := blocks.New(bc)
	if err != nil {
		return nil, fmt.Errorf("stage %v: %w", cfg.Range, err)
	}
	return &Runner{
		runner:  model.NewRunner(m, model.RunnerConfig{MaxTokens: cfg.MaxTokens, Pool: cfg.Pool, First: cfg.Range.First, Last: cfg.Range.Last}),
		cache:   cache,
		smp:     sample.New(m.Config.Vocab),
		vocab:   m.Config.Vocab,
		last:    cfg.Range.Last == layers,
		zeros:   make([]int, cfg.MaxTokens),
		row:     make([]float32, m.Config.Vocab),
		disk:    cfg.disk,
		written: make([]bool, cfg.NumBlocks),
	}, nil
}

// Last reports whether the stage holds the model's last layer (and samples).
func (s *Runner) Last() bool { return s.last }

// Close releases the stage's runner.
func (s *Runner) Close() { s.runner.Close() }

// Run runs one step. A middle stage returns the hidden states (tokens, dim) for the next
// stage; the last returns the sampled token of every sample spec. A step of no sequences
// only carries moves, and returns nothing. Both results are valid
// until the next call.
func (s *Runner) Run(st *engine.StageStep) (hidden []float32, tokens []int, err error) {
	if err := s.moves(st); err != nil {
		return nil, nil, err
	}
	if len(st.Seqs) == 0 { // the leader's moves only, sent as it idles
		s.tokens = s.tokens[:0]
		return nil, s.tokens, nil
	}
	s.batch = s.batch[:0]
	for i, q := range st.Seqs {
		if q.New < 1 || q.New > q.Len || q.New > len(s.zeros) {
			return nil, nil, fmt.Errorf("stage: sequence %d runs %d of %d tokens", i, q.New, q.Len)
		}
		if want := (q.Len + s.cache.BlockSize() - 1) / s.cache.BlockSize(); len(q.Blocks) != want {
			return nil, nil, fmt.Errorf("stage: sequence %d has %d blocks for %d tokens", i, len(q.Blocks), q.Len)
		}
		bs := s.cache.BlockSize()
		for j, b := range q.Blocks {
			if b < 0 || b >= s.cache.NumBlocks() {
				return nil, nil, fmt.Errorf("stage: sequence %d names block %d of %d", i, b, s.cache.NumBlocks())
			}
			if j*bs < q.Len-q.New && !s.written[b] { // holds positions the step reads
				return nil, nil, fmt.Errorf("stage: sequence %d reads block %d, which this session never wrote (the leader's cache outlived a session)", i, b)
			}
		}
		for _, b := range q.Blocks[(q.Len-q.New)/bs:] {
			s.written[b] = true
		}
		s.batch = append(s.batch, model.Seq{Table: s.cache.View(q.Blocks, q.Len), Tokens: s.zeros[:q.New]})
	}
	out, err := s.runner.Stage(s.batch, s.cache, st.Hidden)
	if err != nil {
		return nil, nil, fmt.Errorf("stage: %w", err)
	}
	if !s.last {
		return out, nil, nil
	}
	for _, sp := range st.Samples {
		if sp.Row < 0 || sp.Row >= len(st.Seqs) {
			return nil, nil, fmt.Errorf("stage: sample of row %d in a step of %d sequences", sp.Row, len(st.Seqs))
		}
		if err := sp.Params.Validate(); err != nil {
			return nil, nil, fmt.Errorf("stage: %w", err)
		}
	}
	s.tokens = engine.SampleStep(s.tokens[:0], s.smp, out, s.vocab, st.Samples, s.row)
	return nil, s.tokens, nil
}

// Chain is the later stages of a pipeline in this process, run one after the other: an
// engine.Downstream without a network, for a single machine and for tests of the
// protocol's logic. Send runs the step at once; Recv hands out the results in order.
type Chain struct {
	Stages []*Runner
	done   [][]int // tokens of the steps sent and not yet received, oldest first
}

var _ engine.Downstream = (*Chain)(nil)

// Send runs st through every stage and keeps the last stage's tokens for Recv.
func (c *Chain) Send(ctx context.Context, st *engine.StageStep) error {
	tokens, err := c.Step(ctx, st)
	if err != nil {
		return err
	}
	c.done = append(c.done, slices.Clone(tokens))
	return nil
}

// Recv returns the tokens of the oldest step sent.
func (c *Chain) Recv(context.Context) ([]int, error) {
	if len(c.done) == 0 {
		return nil, errors.New("shard: no step in flight")
	}
	tokens := c.done[0]
	c.done = slices.Delete(c.done, 0, 1)
	return tokens, nil
}

// Step runs st through every stage and returns the last stage's tokens.
func (c *Chain) Step(_ context.Context, st *engine.StageStep) ([]int, error) {
	next := *st
	for i, s := range c.Stages {
		hidden, tokens, err := s.Run(&next)
		if err != nil {
			return nil, err
		}
		if i == len(c.Stages)-1 {
			if !s.Last() {
				return nil, fmt.Errorf("stage chain ends before the last layer")
			}
			return tokens, nil
		}
		next.Hidden = hidden // every stage repeats the copies in its own mirror
	}
	return nil, fmt.Errorf("empty stage chain")
}
