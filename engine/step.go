package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
)

// intake moves submitted requests into the scheduler. It reports whether the engine is
// closing (stop once idle) and whether what is left must be aborted.
func (e *Engine) intake() (stop, abort bool) {
	e.mu.Lock()
	inbox := e.inbox
	e.inbox = nil
	stop, abort = e.closed, e.abortAll
	e.mu.Unlock()
	for _, r := range inbox {
		r.stopWake = context.AfterFunc(r.ctx, e.signal)
		s := &seq{
			id:     r.id << 16,
			r:      r,
			tokens: slices.Clone(r.req.Prompt),
			prompt: len(r.req.Prompt) - r.req.Resumed,
			table:  &blocks.Table{},
			params: r.req.Sampling,
		}
		r.seqs[0] = s
		r.live = r.req.N
		e.active = append(e.active, r)
		if !e.cfg.NoPrefixCaching {
			e.sc.extendHashes(s, len(s.tokens)/e.cfg.BlockSize)
			r.hashes = s.hashes
			if e.tier != nil {
				e.tier.prefetch(r)
			}
		}
		e.sc.enqueue(s)
	}
	return stop, abort
}

// reap ends the requests whose context is done, or all of them when abort is set.
func (e *Engine) reap(abort bool) {
	for _, r := range slices.Clone(e.active) {
		switch {
		case abort:
			e.fail(r, ErrClosed)
		case r.ctx.Err() != nil:
			e.fail(r, fmt.Errorf("engine: request cancelled: %w", context.Cause(r.ctx)))
		}
	}
}

// flight is one planned step from its launch until its tokens are handed out: its
// sequences, how many tokens each ran, and the samples it draws.
type flight struct {
	plan  []*seq
	count []int
	specs []SampleSpec
	start time.Time
}

// launch runs the planned batch: the whole model in this process, whose tokens it hands
// out at once, or the leader's layers, after which the step travels down the pipeline and
// comes back through land. Its sequences are in flight until then.
func (e *Engine) launch() error {
	sc := e.sc
	f := e.newFlight()
	f.plan = append(f.plan, sc.plan...)
	f.count = append(f.count, sc.count...)
	f.start = time.Now()
	e.batch = e.batch[:0]
	for i, s := range f.plan {
		s.inflight = true
		n := f.count[i]
		end := s.table.Len
		e.batch = append(e.batch, model.Seq{Table: s.table, Tokens: s.tokens[end-n : end]})
		if s.remaining() > 0 {
			continue // mid-prefill: the next chunk comes in a later step
		}
		// The samples this row gives: the sequence's own, and on its first token those of
		// the request's other samples, which fork from it after the step.
		samples := 1
		if s.r.req.N > 1 && !s.r.forked {
			samples = s.r.req.N
		}
		draw := len(s.tokens) - 1 - (s.prompt - 1)
		for j := range samples {
			p := s.params
			p.Seed += uint64(j)
			f.specs = append(f.specs, SampleSpec{Row: i, Params: p, Draw: draw})
		}
	}
	e.met.batchTokens.Observe(float64(len(e.batch)))
	if e.cfg.Downstream != nil {
		if err := e.sendPipeline(f); err != nil {
			e.drop(f)
			return err
		}
		e.flights = append(e.flights, f)
		return nil
	}
	logits, err := e.runner.Forward(e.batch, e.cache)
	if err != nil {
		e.drop(f)
		return fmt.Errorf("engine: forward: %w", err)
	}
	e.sampled = sampleSpecs(e.sampled[:0], e.smp, logits, e.model.Config.Vocab, f.specs, e.row)
	e.land(f, e.sampled)
	return nil
}

// newFlight takes a flight from the free list.
func (e *Engine) newFlight() *flight {
	if n := len(e.spare); n > 0 {
		f := e.spare[n-1]
		e.spare = e.spare[:n-1]
		return f
	}
	return &flight{}
}

// land hands out the tokens of f, one per spec, and ends f (which is no longer in
// e.flights). A sequence that ended while f was in flight (cancelled, or failed with its
// request) is skipped.
func (e *Engine) land(f *flight, tokens []int) {
	sc := e.sc
	e.met.stepSeconds.Observe(time.Since(f.start).Seconds())
	next := 0 // the next entry of f.specs and tokens
	for i, s := range f.plan {
		s.inflight = false // before accept, which may remove s
		gone := s.state == finished
		if !gone {
			sc.hashFull(s)
		}
		if next >= len(f.specs) || f.specs[next].Row != i {
			continue
		}
		if gone {
			for next < len(f.specs) && f.specs[next].Row == i {
				next++
			}
			continue
		}
		e.samples = append(e.samples[:0], s)
		if s.r.req.N > 1 && !s.r.forked {
			e.samples = append(e.samples, sc.fork(s)...)
		}
		for _, x := range e.samples {
			e.accept(x, tokens[next])
			next++
		}
	}
	e.drop(f)
}

// abandon ends every flight without handing out its tokens: the pipeline failed, and the
// requests that ran in them fail with it.
func (e *Engine) abandon() {
	for _, f := range e.flights {
		e.drop(f)
	}
	e.flights = e.flights[:0]
}

// drop takes f's sequences out of flight and puts f back on the free list.
func (e *Engine) drop(f *flight) {
	for _, s := range f.plan {
		s.inflight = false
	}
	clear(f.plan)
	f.plan, f.count, f.specs = f.plan[:0], f.count[:0], f.specs[:0]
	e.spare = append(e.spare, f)
}

// sampleSpecs draws one token per spec from its row of logits. Sampling rewrites a row, so
// every spec but the last of a row draws from a copy in scratch (vocab).
func sampleSpecs(dst []int, smp *sample.Sampler, logits []float32, vocab int, specs []SampleSpec, scratch []float32) []int {
	for j, sp := range specs {
		row := logits[sp.Row*vocab : (sp.Row+1)*vocab]
		if j+1 < len(specs) && specs[j+1].Row == sp.Row {
			copy(scratch, row)
			row = scratch
		}
		dst = append(dst, smp.Sample(row, sp.Params, sp.Draw))
	}
	return dst
}

// accept adds a sampled token to s and ends s when it is done.
func (e *Engine) accept(s *seq, tok int) {
	r := s.r
	if tok == bos || slices.Contains(r.req.StopTokens, tok) {
		e.finish(s, FinishStop)
		return
	}
	s.tokens = append(s.tokens, tok)
	r.events <- Event{Index: s.index, Token: tok}
	if s.generated() >= r.req.MaxTokens || len(s.tokens) > e.model.Config.SeqLen {
		e.finish(s, FinishLength)
	}
}

// finish ends one sample.
func (e *Engine) finish(s *seq, why FinishReason) {
	e.sc.remove(s)
	s.r.events <- Event{Index: s.index, Finish: why}
	s.r.live--
	if s.r.live == 0 {
		e.end(s.r)
	}
}

// fail ends a whole request with err.
func (e *Engine) fail(r *request, err error) {
	if r.failed {
		return
	}
	r.failed = true
	for _, s := range r.seqs {
		if s != nil && s.state != finished {
			e.sc.remove(s)
		}
	}
	r.events <- Event{Err: err}
	e.end(r)
}

// end closes a request's channel and forgets it.
func (e *Engine) end(r *request) {
	close(r.events)
	if r.stopWake != nil {
		r.stopWake()
	}
	e.active = slices.DeleteFunc(e.active, func(x *request) bool { return x == r })
}

// publish updates the stats snapshot and the metrics, and collects cache events.
func (e *Engine) publish() {
	sc := e.sc
	st := Stats{
		Running:       len(sc.running),
		Waiting:       len(sc.waiting),
		Swapped:       len(sc.swapped),
		BlocksTotal:   e.cache.NumBlocks(),
		BlocksFree:    e.cache.NumFree(),
		BlocksCached:  e.cache.NumCached(),
		PrefixQueried: sc.prefixQueried,
		PrefixHit:     sc.prefixHit,
		Preemptions:   sc.preemptions,
	}
	if e.tier != nil {
		st.SwapBytesOut, st.SwapBytesIn, st.SwapBlocks = e.tier.bytesOut, e.tier.bytesIn, len(e.tier.onDisk)
	}
	e.mu.Lock()
	st.Steps = e.stats.Steps + 1
	e.stats = st
	e.waiting = len(e.inbox) + countWaiting(e.active)
	if e.cfg.RecordEvents {
		n := len(e.pending)
		e.pending = e.cache.TakeEvents(e.pending)
		if e.cached == nil {
			e.cached = make(map[blocks.BlockHash]struct{})
		}
		for _, ev := range e.pending[n:] {
			if ev.Kind == blocks.Stored {
				e.cached[ev.Hash] = struct{}{}
			} else {
				delete(e.cached, ev.Hash)
			}
		}
	}
	e.mu.Unlock()
	e.met.update(st, e.tier)
}

// countWaiting counts the requests that have not started running.
func countWaiting(active []*request) int {
	n := 0
	for _, r := range active {
		if s := r.seqs[0]; s != nil && s.state == waiting && s.generated() == r.req.Resumed {
			n++
		}
	}
	return n
}

// close releases the engine's resources when the loop ends.
func (e *Engine) close() {
	for _, r := range slices.Clone(e.active) {
		e.fail(r, ErrClosed)
	}
	e.runner.Close()
	e.pool.Close()
	if e.tier != nil {
		if err := e.tier.close(); err != nil {
			e.cfg.Logger.Warn("closing the disk tier", "err", err)
		}
	}
	close(e.done)
}
