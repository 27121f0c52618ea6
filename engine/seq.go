package engine

import (
	"context"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model/sample"
)

// state is where a sequence is in its life.
type state uint8

const (
	waiting  state = iota // queued for admission (new, or preempted to recompute)
	running               // holds blocks and runs every step
	swapped               // preempted; its blocks are on disk
	finished              // done or aborted; holds nothing
)

// request is what Submit made of a Request: shared by its samples.
type request struct {
	id       uint64
	ctx      context.Context
	req      Request
	events   chan Event // buffered for every event the request can produce: sends never block
	arrival  time.Time
	seqs     []*seq // sample i at index i; nil until forked
	live     int    // samples not finished
	forked   bool   // samples 1..N-1 exist
	failed   bool
	stopWake func() bool        // unregisters the wake-up on ctx's end
	hashes   []blocks.BlockHash // chained hashes of the prompt's full blocks
	prefetch *prefetch          // disk reads of the prompt's prefix, started at intake
}

// seq is one sample of a request: its tokens, its block table and its progress. The
// tokens whose K/V are in the cache are tokens[:table.Len] once a step completes; during a
// step, table.Len already counts the tokens being run.
type seq struct {
	id       uint64
	r        *request
	index    int
	tokens   []int // prompt, then generated tokens
	prompt   int   // length of the original prompt: tokens after it were generated (some maybe by an earlier run, Request.Resumed)
	table    *blocks.Table
	hashes   []blocks.BlockHash // chained hashes of tokens' full blocks that are hashed in the cache
	state    state
	params   sample.Params
	swapKeys int  // blocks saved on disk while swapped (keys from id and index)
	swapLen  int  // table.Len when swapped out
	inflight bool // a step that runs it is down the pipeline and has not come back
	firstTok time.Time
}

// remaining is the number of tokens the sequence still has to run before it can sample.
func (s *seq) remaining() int { return len(s.tokens) - s.table.Len }

// generated is how many tokens the sample has produced.
func (s *seq) generated() int { return len(s.tokens) - s.prompt }

// work is the policy's measure of a request's size: prompt plus the tokens it may generate.
func (s *seq) work() int { return s.prompt + s.r.req.MaxTokens }
