package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
	"github.com/kvmesh/kvmesh/model/tensor"
)

// bos is the token that starts a story; generating it ends a sample, as in llama2.c.
const bos = 1

// Engine serves generations of one model on one KV cache: Submit queues a request, a single
// loop goroutine schedules and runs steps, and each request's events flow back on its own
// channel.
type Engine struct {
	cfg    Config
	model  *model.Model
	cache  *blocks.Cache
	runner *model.Runner
	pool   *tensor.Pool
	smp    *sample.Sampler
	sc     *scheduler
	tier   *tier // nil without a disk tier
	met    *metrics

	mu       sync.Mutex // protects inbox, closed, abortAll, nextID, waiting, stats, pending
	inbox    []*request
	closed   bool // Shutdown began: no new requests
	abortAll bool // Shutdown's context ended: abort what is left
	nextID   uint64
	waiting  int // requests submitted and not yet admitted, for the queue limit
	stats    Stats
	pending  []blocks.Event                // prefix cache events not yet taken by Events
	cached   map[blocks.BlockHash]struct{} // keys in the prefix cache as of the last step (RecordEvents)

	wake chan struct{} // a request arrived or the engine is closing (buffered, 1)
	done chan struct{} // the loop has exited

	// Loop-owned state.
	active  []*request
	batch   []model.Seq
	row     []float32 // (vocab) logits copy for forked samples
	samples []*seq
	sampled []int     // the token drawn for each spec of a local step
	stage   StageStep // the step as the later stages see it (pipeline leaders)
	flights []*flight // steps down the pipeline, oldest first (at most MicroBatches)
	spare   []*flight // flights to reuse
}

// Stats is a snapshot of the engine, published after every step.
type Stats struct {
	Running, Waiting, Swapped int
	BlocksTotal, BlocksFree   int
	BlocksCached              int
	PrefixQueried, PrefixHit  int64 // prompt tokens looked up, and found cached
	Preemptions               int64
	SwapBytesOut, SwapBytesIn int64
	SwapBlocks                int // cached prefix blocks the disk tier holds
	Steps                     int64
}

// New starts an engine for m. Close it with Shutdown.
func New(m *model.Model, cfg Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Identity == "" {
		cfg.Identity = m.Identity()
	}
	shape := m.KVShape(cfg.BlockSize)
	last := m.Config.Layers
	if cfg.Downstream != nil {
		if cfg.LeaderLayers >= last {
			return nil, fmt.Errorf("engine: a leader of %d layers leaves none downstream of a %d-layer model", cfg.LeaderLayers, last)
		}
		last = cfg.LeaderLayers
		shape.Layers = last
	}
	if cfg.NumBlocks == 0 {
		cfg.NumBlocks = int(cfg.KVMemory / int64(shape.BlockBytes(cfg.KVDType)))
	}
	if min := (m.Config.SeqLen + cfg.BlockSize - 1) / cfg.BlockSize; cfg.NumBlocks < min {
		return nil, fmt.Errorf("engine: %d KV blocks cannot hold one full-context sequence (%d blocks)", cfg.NumBlocks, min)
	}
	bc := blocks.DefaultConfig()
	bc.Shape, bc.DType, bc.NumBlocks, bc.RecordEvents = shape, cfg.KVDType, cfg.NumBlocks, cfg.RecordEvents
	bc.RecordCopies = cfg.Downstream != nil
	cache, err := blocks.New(bc)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	identity := fmt.Sprintf("%s|kv=%v|block=%d", cfg.Identity, cfg.KVDType, cfg.BlockSize)
	e := &Engine{
		cfg:   cfg,
		model: m,
		cache: cache,
		pool:  tensor.NewPool(cfg.Threads),
		smp:   sample.New(m.Config.Vocab),
		row:   make([]float32, m.Config.Vocab),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	e.runner = model.NewRunner(m, model.RunnerConfig{MaxTokens: cfg.MaxBatchTokens, Pool: e.pool, Last: last})
	seed := cfg.KeySeed
	if seed == (blocks.BlockHash{}) {
		seed = sha256.Sum256([]byte(identity))
	}
	e.sc = &scheduler{cfg: cfg, cache: cache, salt: seed}
	if cfg.SwapPath != "" {
		ranged := 0 // a pipeline leader's file holds its layers only
		if cfg.Downstream != nil {
			ranged = cfg.LeaderLayers
		}
		swapID := SwapIdentity(cfg.Identity, cfg.KVDType, cfg.BlockSize, 0, ranged)
		if e.tier, err = openTier(context.Background(), cfg, cache, swapID); err != nil {
			e.pool.Close()
			return nil, err
		}
		e.sc.spill = e.tier
	}
	e.met = newMetrics(cfg.Registry)
	e.publish()
	go e.loop()
	return e, nil
}

// Submit queues req. Its events arrive on the returned channel, which is closed after the
// last one; it is buffered for every event the request can produce, so the engine never
// waits for a slow reader. Cancelling ctx aborts the request and frees its blocks.
func (e *Engine) Submit(ctx context.Context, req Request) (<-chan Event, error) {
	if req.N == 0 {
		req.N = 1
	}
	if err := e.check(&req); err != nil {
		return nil, err
	}
	r := &request{
		ctx:     ctx,
		req:     req,
		events:  make(chan Event, req.N*(req.MaxTokens+1)+1),
		arrival: time.Now(),
		seqs:    make([]*seq, req.N),
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if e.waiting >= e.cfg.MaxWaiting {
		e.mu.Unlock()
		return nil, ErrQueueFull
	}
	e.nextID++
	r.id = e.nextID
	e.waiting++
	e.inbox = append(e.inbox, r)
	e.mu.Unlock()
	e.signal()
	return r.events, nil
}

// check validates a request against the model and the cache.
func (e *Engine) check(req *Request) error {
	c := e.model.Config
	switch {
	case len(req.Prompt) == 0:
		return fmt.Errorf("%w: empty prompt", ErrInvalid)
	case req.MaxTokens < 1:
		return fmt.Errorf("%w: max tokens %d, want at least 1", ErrInvalid, req.MaxTokens)
	case req.N < 1 || req.N > e.cfg.MaxRunning:
		return fmt.Errorf("%w: n = %d, want 1 to %d", ErrInvalid, req.N, e.cfg.MaxRunning)
	case req.Resumed < 0 || req.Resumed >= len(req.Prompt) || req.Resumed >= req.MaxTokens:
		return fmt.Errorf("%w: %d resumed tokens of a %d-token prompt with max tokens %d", ErrInvalid, req.Resumed, len(req.Prompt), req.MaxTokens)
	case len(req.Prompt) > c.SeqLen:
		return fmt.Errorf("%w: prompt of %d tokens, context of %d", ErrTooLong, len(req.Prompt), c.SeqLen)
	case len(req.Prompt)-req.Resumed+req.MaxTokens > c.SeqLen+1:
		return fmt.Errorf("%w: prompt of %d tokens plus %d new tokens passes the context of %d", ErrTooLong, len(req.Prompt)-req.Resumed, req.MaxTokens, c.SeqLen)
	}
	for _, t := range req.Prompt {
		if t < 0 || t >= c.Vocab {
			return fmt.Errorf("%w: token id %d outside the vocabulary of %d", ErrInvalid, t, c.Vocab)
		}
	}
	if err := req.Sampling.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	bs := e.cfg.BlockSize
	need := req.N * ((len(req.Prompt) - req.Resumed + req.MaxTokens + bs - 1) / bs)
	if need > e.cfg.NumBlocks {
		return fmt.Errorf("%w: needs %d KV blocks, the cache has %d", ErrTooLong, need, e.cfg.NumBlocks)
	}
	return nil
}

func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Stats returns the snapshot of the last step.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Ready reports whether the engine takes requests.
func (e *Engine) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.closed
}

// Events drains the prefix cache's stored/removed events (Config.RecordEvents).
// Safe to call from any goroutine.
func (e *Engine) Events(dst []blocks.Event) []blocks.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	dst = append(dst, e.pending...)
	e.pending = e.pending[:0]
	return dst
}

// CachedKeys appends the keys of the blocks in the prefix cache as of the last step
// (Config.RecordEvents), for a snapshot of the router's index. Safe from any goroutine.
func (e *Engine) CachedKeys(dst []blocks.BlockHash) []blocks.BlockHash {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.cached {
		dst = append(dst, k)
	}
	return dst
}

// Shutdown stops taking requests, lets the running and queued ones finish until ctx ends
// (then aborts them), and releases the engine's resources.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	already := e.closed
	e.closed = true
	e.mu.Unlock()
	if !already {
		e.signal()
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		e.mu.Lock()
		e.abortAll = true
		e.mu.Unlock()
		e.signal()
		<-e.done
	}
	return ctx.Err()
}

// loop is the engine's goroutine: take new requests, drop cancelled ones, plan a step, run
// it, hand out the tokens, move cold blocks to disk; sleep when there is nothing to do.
func (e *Engine) loop() {
	defer e.close()
	for {
		stop, abort := e.intake()
		e.reap(abort)
		if e.sc.idle() && len(e.flights) == 0 {
			e.flushStageOps()
			e.publish()
			if stop {
				return
			}
			<-e.wake
			continue
		}
		launched := false
		if len(e.flights) < e.cfg.MicroBatches {
			e.sc.schedule(e.flightSeqs())
			if len(e.sc.plan) > 0 {
				launched = true
				if err := e.launch(); err != nil {
					e.stepFailed(err, e.sc.plan)
				}
			}
		}
		switch {
		case len(e.flights) > 0 && (!launched || len(e.flights) == e.cfg.MicroBatches):
			// Every micro-batch is out, or nothing else can run: take the oldest back.
			if err := e.recvPipeline(); err != nil {
				e.stepFailed(err, nil)
			}
		case !launched:
			// Waiting requests need blocks that live ones hold; wait for them to finish.
			e.publish()
			<-e.wake
			continue
		}
		if e.tier != nil {
			e.tier.offload(e.sc, e.cfg.SwapHigh, e.cfg.SwapLow)
		}
		if e.cfg.verify {
			if err := e.sc.check(); err != nil {
				panic(fmt.Sprintf("engine: invariant broken after a step: %v", err))
			}
		}
		e.publish()
	}
}

// flightSeqs is how many sequences the next step may run: all of them without a
// pipeline, otherwise an even share of the live ones for each micro-batch.
func (e *Engine) flightSeqs() int {
	if e.cfg.MicroBatches == 1 {
		return math.MaxInt
	}
	live := len(e.sc.running) + len(e.sc.waiting) + len(e.sc.swapped)
	return max(1, (live+e.cfg.MicroBatches-1)/e.cfg.MicroBatches)
}

// stepFailed ends the requests a failed step leaves in doubt: with a pipeline failure,
// every request (the later stages' K/V of every sequence is in doubt) and the prefix
// cache, whose blocks the stages may no longer hold; otherwise the requests of plan.
func (e *Engine) stepFailed(err error, plan []*seq) {
	e.cfg.Logger.Error("step failed", "err", err)
	if errors.Is(err, ErrPipeline) {
		e.abandon()
		for _, r := range slices.Clone(e.active) {
			e.fail(r, err)
		}
		e.forgetPrefixes()
		return
	}
	for _, s := range slices.Clone(plan) {
		e.fail(s.r, err)
	}
}

// forgetPrefixes takes every block out of the prefix cache.
func (e *Engine) forgetPrefixes() {
	for b := range e.cache.NumBlocks() {
		e.cache.Uncache(b)
	}
}
