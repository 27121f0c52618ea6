package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model/sample"
)

// ErrPipeline: a later stage of the pipeline failed; every request that was running on it
// has ended with this error, and a client may resubmit it elsewhere (Request.Resumed).
var ErrPipeline = errors.New("engine: pipeline stage failed")

// Downstream runs the layers after the leader's own: the rest of a pipeline, through to
// the last stage, which samples. Steps run in the order they are sent; several may be in
// flight. The engine's loop is the only caller.
type Downstream interface {
	// Send starts s down the pipeline. The engine may reuse s once Send returns.
	Send(ctx context.Context, s *StageStep) error
	// Recv waits for the oldest step sent and not yet received, and returns the sampled
	// token of every entry of its Samples, in order.
	Recv(ctx context.Context) ([]int, error)
}

// StageStep is one step as the later stages of a pipeline see it. The leader's scheduler
// owns the KV blocks: every stage keeps its layers' K/V at the same block ids (a mirror
// cache), repeating the leader's copy-on-write copies and disk moves before running the
// step.
type StageStep struct {
	Seqs    []StageSeq    // the batch, in order; their tokens are consecutive rows of Hidden
	Copies  []blocks.Copy // copy-on-write copies to repeat before the step, in order
	Disk    []DiskOp      // disk-tier moves to repeat before the step, in order, among Copies
	Hidden  []float32     // (tokens, dim): the hidden states after the leader's layers
	Samples []SampleSpec  // what the last stage samples, in order
}

// StageSeq is one sequence of a step: its block table after the step's allocation, and how
// many new tokens it runs (they are its last New positions).
type StageSeq struct {
	Blocks []int
	Len    int
	New    int
}

// SampleSpec says how to draw one token: from logits row Row (the row of the Row-th
// sequence of the step), with Params, as draw number Draw of its sample.
type SampleSpec struct {
	Row    int
	Params sample.Params
	Draw   int
}

// sendPipeline runs the leader's layers over f's batch and sends the step on.
func (e *Engine) sendPipeline(f *flight) error {
	hidden, err := e.runner.Stage(e.batch, e.cache, nil)
	if err != nil {
		return fmt.Errorf("engine: forward: %w", err)
	}
	st := &e.stage
	st.Seqs = st.Seqs[:0]
	for i, s := range f.plan {
		st.Seqs = append(st.Seqs, StageSeq{Blocks: s.table.Blocks, Len: s.table.Len, New: f.count[i]})
	}
	st.Copies, st.Disk = e.takeStageOps(st.Copies[:0], st.Disk[:0])
	st.Hidden, st.Samples = hidden, f.specs
	if err := e.cfg.Downstream.Send(context.Background(), st); err != nil {
		return fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	return nil
}

// recvPipeline waits for the oldest flight's tokens and hands them out.
func (e *Engine) recvPipeline() error {
	f := e.flights[0]
	tokens, err := e.cfg.Downstream.Recv(context.Background())
	if err == nil && len(tokens) != len(f.specs) {
		err = fmt.Errorf("%d tokens for %d samples", len(tokens), len(f.specs))
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPipeline, err) // f stays: stepFailed abandons every flight
	}
	e.flights = slices.Delete(e.flights, 0, 1)
	e.land(f, tokens)
	return nil
}

// SampleStep draws the tokens of a step's sample specs from the last stage's logits; the
// last stage of a pipeline calls it. scratch is (vocab).
func SampleStep(dst []int, smp *sample.Sampler, logits []float32, vocab int, specs []SampleSpec, scratch []float32) []int {
	return sampleSpecs(dst, smp, logits, vocab, specs, scratch)
}
