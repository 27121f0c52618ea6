package model

import (
	"fmt"
	"math"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model/tensor"
)

// Seq is one sequence's part of a batch.
type Seq struct {
	// Table is the sequence's block table. Its Len already counts Tokens: they sit at
	// positions Table.Len-len(Tokens) .. Table.Len-1.
	Table *blocks.Table
	// Tokens are the new token ids to run, in position order (at least one).
	Tokens []int
	// AllLogits asks for logits at every new token instead of only the last one.
	AllLogits bool
}

// LogitRows is how many rows of logits Forward returns for s.
func (s Seq) LogitRows() int {
	if s.AllLogits {
		return len(s.Tokens)
	}
	return 1
}

// RunnerConfig sizes a Runner.
type RunnerConfig struct {
	// MaxTokens is the most tokens one Forward may carry, summed over its sequences.
	// Default 512.
	MaxTokens int
	// Pool runs the kernels. Default: a new pool with one worker per core, closed by
	// Runner.Close.
	Pool *tensor.Pool
	// First and Last are the layers the Runner runs, [First, Last): a stage of a pipeline.
	// Default: all of them (Last 0 means the model's layer count).
	First, Last int
}

// Runner holds the scratch buffers of forward passes. It is not safe for concurrent use.
type Runner struct {
	m           *Model
	pool        *tensor.Pool
	ownsPool    bool
	max         int // MaxTokens
	first, last int // layer range [first, last)

	// The current batch, flattened: token i belongs to batch[seq[i]] at position pos[i].
	batch []Seq
	n     int   // tokens in the current batch
	seq   []int // (max) index into batch of each token
	pos   []int // (max) position of each token in its sequence
	tok   []int // (max) token id of each token
	out   []int // (<= max) the tokens that get logits, in order
	layer int   // the cache layer attention runs on, for attendRange
	cache *blocks.Cache

	x      []float32 // (max, dim) residual stream
	xb     []float32 // (max, dim) normalised input of a sublayer, then attention output
	xb2    []float32 // (max, dim) sublayer output before the residual add
	q      []float32 // (max, dim) queries
	k      []float32 // (max, kvDim) keys of the new tokens
	v      []float32 // (max, kvDim) values of the new tokens
	hb     []float32 // (max, hidden) SwiGLU gate
	hb2    []float32 // (max, hidden) SwiGLU up projection
	xl     []float32 // (rows, dim) final-normed rows that get logits
	logits []float32 // (rows, vocab); grows to the most rows any batch asked for

	scratch     chan []float32 // each (seqLen): attention weights, one per concurrent worker
	attendRange func(lo, hi int)
}

// NewRunner allocates a Runner's buffers for m. It panics on a layer range outside the
// model (a programmer error: ranges are validated where they are configured).
func NewRunner(m *Model, cfg RunnerConfig) *Runner {
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 512
	}
	c := m.Config
	if cfg.Last == 0 {
		cfg.Last = c.Layers
	}
	if cfg.First < 0 || cfg.First >= cfg.Last || cfg.Last > c.Layers {
		panic(fmt.Sprintf("model: layer range [%d, %d) outside a model of %d layers", cfg.First, cfg.Last, c.Layers))
	}
	r := &Runner{
		m:     m,
		pool:  cfg.Pool,
		max:   cfg.MaxTokens,
		first: cfg.First,
		last:  cfg.Last,
		seq:   make([]int, cfg.MaxTokens),
		pos:   make([]int, cfg.MaxTokens),
		tok:   make([]int, cfg.MaxTokens),
		out:   make([]int, 0, cfg.MaxTokens),
		x:     make([]float32, cfg.MaxTokens*c.Dim),
		xb:    make([]float32, cfg.MaxTokens*c.Dim),
		xb2:   make([]float32, cfg.MaxTokens*c.Dim),
		q:     make([]float32, cfg.MaxTokens*c.Dim),
		k:     make([]float32, cfg.MaxTokens*c.KVDim()),
		v:     make([]float32, cfg.MaxTokens*c.KVDim()),
		hb:    make([]float32, cfg.MaxTokens*c.HiddenDim),
		hb2:   make([]float32, cfg.MaxTokens*c.HiddenDim),
	}
	if r.pool == nil {
		r.pool = tensor.NewPool(0)
		r.ownsPool = true
	}
	r.scratch = make(chan []float32, r.pool.Threads()+1)
	for i := 0; i < cap(r.scratch); i++ {
		r.scratch <- make([]float32, c.SeqLen)
	}
	r.attendRange = r.attend
	return r
}

// Close releases the Runner's kernel pool if it made one.
func (r *Runner) Close() {
	if r.ownsPool {
		r.pool.Close()
	}
}

// Model returns the model the Runner runs.
func (r *Runner) Model() *Model { return r.m }

// MaxTokens is the most tokens one Forward may carry.
func (r *Runner) MaxTokens() int { return r.max }

// Forward runs one step of the whole model over batch, writing every new token's K and V
// into cache, and returns the logits: (rows, vocab) with, in batch order, LogitRows() rows
// per sequence. The Runner must hold every layer. The returned slice is valid until the
// next call.
func (r *Runner) Forward(batch []Seq, cache *blocks.Cache) ([]float32, error) {
	if r.first != 0 || r.last != r.m.Config.Layers {
		return nil, fmt.Errorf("%w: Forward on a runner of layers [%d, %d): use Stage", ErrBatch, r.first, r.last)
	}
	return r.Stage(batch, cache, nil)
}

// Stage runs the Runner's layers over batch, writing the new tokens' K and V of those
// layers into cache (whose Shape.Layers is last-first; cache layer i is model layer
// first+i). The first stage embeds the tokens and takes in == nil; a later stage takes in,
// the hidden states (tokens, dim) the previous stage returned. The last stage returns the
// logits, as Forward does; any other stage returns the hidden states (tokens, dim) for the
// next one. The returned slice is valid until the next call.
func (r *Runner) Stage(batch []Seq, cache *blocks.Cache, in []float32) ([]float32, error) {
	if err := r.load(batch); err != nil {
		return nil, err
	}
	c := r.m.Config
	dim := c.Dim
	if got := cache.Config().Layers; got != r.last-r.first {
		return nil, fmt.Errorf("%w: cache of %d layers for a runner of layers [%d, %d)", ErrBatch, got, r.first, r.last)
	}
	switch {
	case r.first == 0 && in != nil:
		return nil, fmt.Errorf("%w: the first stage embeds tokens and takes no hidden states", ErrBatch)
	case r.first > 0 && len(in) != r.n*dim:
		return nil, fmt.Errorf("%w: %d hidden values for %d tokens of width %d", ErrBatch, len(in), r.n, dim)
	case r.first == 0:
		for i, tok := range r.tok[:r.n] {
			copy(r.x[i*dim:(i+1)*dim], r.m.ck.Embedding[tok*dim:(tok+1)*dim])
		}
	default:
		copy(r.x[:r.n*dim], in)
	}
	r.cache = cache
	for l := r.first; l < r.last; l++ {
		r.layerForward(l, cache)
	}
	r.cache = nil
	if r.last < c.Layers {
		return r.x[:r.n*dim], nil
	}
	return r.head(), nil
}

// load validates the batch and flattens it into r.seq and r.pos.
func (r *Runner) load(batch []Seq) error {
	c := r.m.Config
	n := 0
	r.out = r.out[:0]
	for si, s := range batch {
		if len(s.Tokens) == 0 {
			return fmt.Errorf("%w: sequence %d has no tokens", ErrBatch, si)
		}
		if s.Table == nil || s.Table.Len < len(s.Tokens) {
			return fmt.Errorf("%w: sequence %d: block table holds no room for its %d tokens", ErrBatch, si, len(s.Tokens))
		}
		if s.Table.Len > c.SeqLen {
			return fmt.Errorf("%w: sequence %d reaches position %d, context is %d", ErrContext, si, s.Table.Len, c.SeqLen)
		}
		if n+len(s.Tokens) > r.max {
			return fmt.Errorf("%w: more than %d tokens in one step", ErrBatch, r.max)
		}
		start := s.Table.Len - len(s.Tokens)
		for j, tok := range s.Tokens {
			if tok < 0 || tok >= c.Vocab {
				return fmt.Errorf("%w: sequence %d: token id %d outside the vocabulary of %d", ErrBatch, si, tok, c.Vocab)
			}
			r.seq[n], r.pos[n], r.tok[n] = si, start+j, tok
			if s.AllLogits || j == len(s.Tokens)-1 {
				r.out = append(r.out, n)
			}
			n++
		}
	}
	r.batch, r.n = batch, n
	return nil
}

func (r *Runner) layerForward(l int, cache *blocks.Cache) {
	c := r.m.Config
	w := &r.m.ck.Layers[l]
	dim, kvDim, n := c.Dim, c.KVDim(), r.n

	for i := 0; i < n; i++ {
		tensor.RMSNorm(r.xb[i*dim:(i+1)*dim], r.x[i*dim:(i+1)*dim], w.AttnNorm)
	}
	r.pool.MatMul(r.q[:n*dim], r.xb[:n*dim], w.Wq, n)
	r.pool.MatMul(r.k[:n*kvDim], r.xb[:n*dim], w.Wk, n)
	r.pool.MatMul(r.v[:n*kvDim], r.xb[:n*dim], w.Wv, n)

	for i := 0; i < n; i++ {
		r.rope(r.q[i*dim:(i+1)*dim], r.pos[i])
		r.rope(r.k[i*kvDim:(i+1)*kvDim], r.pos[i])
		block, slot := r.batch[r.seq[i]].Table.Slot(r.pos[i])
		cache.Write(block, slot, l-r.first, r.k[i*kvDim:(i+1)*kvDim], r.v[i*kvDim:(i+1)*kvDim])
	}

	r.layer = l - r.first
	r.pool.For(n*c.Heads, r.attendRange)

	r.pool.MatMul(r.xb2[:n*dim], r.xb[:n*dim], w.Wo, n)
	addInPlace(r.x[:n*dim], r.xb2[:n*dim])

	hidden := c.HiddenDim
	for i := 0; i < n; i++ {
		tensor.RMSNorm(r.xb[i*dim:(i+1)*dim], r.x[i*dim:(i+1)*dim], w.FFNNorm)
	}
	r.pool.MatMul(r.hb[:n*hidden], r.xb[:n*dim], w.W1, n)
	r.pool.MatMul(r.hb2[:n*hidden], r.xb[:n*dim], w.W3, n)
	swiGLU(r.hb[:n*hidden], r.hb2[:n*hidden])
	r.pool.MatMul(r.xb2[:n*dim], r.hb[:n*hidden], w.W2, n)
	addInPlace(r.x[:n*dim], r.xb2[:n*dim])
}

// rope rotates each pair of every head in vec (heads × headSize) by the angles of pos.
func (r *Runner) rope(vec []float32, pos int) {
	hs := r.m.Config.HeadSize()
	half := hs / 2
	cos := r.m.cos[pos*half : (pos+1)*half]
	sin := r.m.sin[pos*half : (pos+1)*half]
	for h := 0; h < len(vec); h += hs {
		head := vec[h : h+hs]
		for j := 0; j < half; j++ {
			v0, v1 := head[2*j], head[2*j+1]
			fcr, fci := cos[j], sin[j]
			head[2*j] = v0*fcr - v1*fci
			head[2*j+1] = v0*fci + v1*fcr
		}
	}
}

// attend computes attention for the work items lo..hi-1 of the current layer; item
// i·heads+h is query head h of token i. Items write disjoint parts of r.xb.
func (r *Runner) attend(lo, hi int) {
	att := <-r.scratch
	defer func() { r.scratch <- att }()

	c := r.m.Config
	hs, bs := c.HeadSize(), r.cache.BlockSize()
	group := c.Heads / c.KVHeads
	scale := float32(math.Sqrt(float64(hs)))
	for item := lo; item < hi; item++ {
		i, h := item/c.Heads, item%c.Heads
		kvh := h / group
		pos := r.pos[i]
		table := r.batch[r.seq[i]].Table
		q := r.q[i*c.Dim+h*hs : i*c.Dim+(h+1)*hs]

		a := att[:pos+1]
		for b, start := 0, 0; start <= pos; b, start = b+1, start+bs {
			r.cache.Scores(a[start:], q, table.Blocks[b], r.layer, kvh, min(bs, pos+1-start))
		}
		for t := range a {
			a[t] /= scale
		}
		tensor.Softmax(a)

		out := r.xb[i*c.Dim+h*hs : i*c.Dim+(h+1)*hs]
		clear(out)
		for b, start := 0, 0; start <= pos; b, start = b+1, start+bs {
			r.cache.AccumV(out, a[start:], table.Blocks[b], r.layer, kvh, min(bs, pos+1-start))
		}
	}
}

// head applies the final norm and the classifier to the tokens that want logits.
func (r *Runner) head() []float32 {
	c := r.m.Config
	dim, rows := c.Dim, len(r.out)
	if len(r.xl) < rows*dim {
		r.xl = make([]float32, rows*dim)
		r.logits = make([]float32, rows*c.Vocab)
	}
	for row, i := range r.out {
		tensor.RMSNorm(r.xl[row*dim:(row+1)*dim], r.x[i*dim:(i+1)*dim], r.m.ck.FinalNorm)
	}
	out := r.logits[:rows*c.Vocab]
	r.pool.MatMul(out, r.xl[:rows*dim], r.m.ck.Classifier, rows)
	return out
}

func addInPlace(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}

// swiGLU sets gate[i] = silu(gate[i]) · up[i], as run.c: val · (1/(1+expf(-val))) · up.
func swiGLU(gate, up []float32) {
	for i, g := range gate {
		g *= 1 / (1 + float32(math.Exp(float64(-g))))
		gate[i] = g * up[i]
	}
}
