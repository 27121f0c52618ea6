package engine

import (
	"fmt"
	"slices"

	"github.com/kvmesh/kvmesh/blocks"
)

// spiller is the disk tier as the scheduler sees it. Its calls are synchronous; the engine
// implements them over a swap.Store. A nil spiller means there is no disk tier.
type spiller interface {
	// saveSeq copies the K/V of s's blocks to disk before a swap preemption; false when the
	// tier cannot take them (full, failing), and the victim recomputes instead.
	saveSeq(s *seq) bool
	// loadSeq reads s's saved blocks into the fresh blocks of s.table; false when any is
	// missing or corrupt, and s recomputes. It forgets the saved blocks either way.
	loadSeq(s *seq) bool
	// dropSeq forgets s's saved blocks (s was aborted while swapped).
	dropSeq(s *seq)
	// loadPrefix reads the cached prefix block named h from disk into block b; false when
	// the disk does not hold it or it fails its checksum.
	loadPrefix(r *request, h blocks.BlockHash, b int) bool
}

// scheduler is the pure core of the engine: the queues, admission, preemption and prefix
// caching of one KV cache. It has no goroutines, no clock and no IO of its own (disk goes
// through spiller); the engine's loop calls schedule, runs the planned batch, then calls
// the update methods.
type scheduler struct {
	cfg     Config
	cache   *blocks.Cache
	salt    blocks.BlockHash // parent hash of every sequence's first block: the model identity
	spill   spiller
	waiting []*seq // in policy order
	running []*seq // in admission order; the last is preempted first
	swapped []*seq // in preemption order

	// The plan of the current step: plan[i] runs count[i] tokens.
	plan  []*seq
	count []int

	// Counters, read by the engine's metrics.
	preemptions   int64
	prefixQueried int64 // prompt tokens looked up in the prefix cache
	prefixHit     int64 // of which found cached (memory or disk)
}

// before reports whether a is admitted before b under the policy.
func (sc *scheduler) before(a, b *seq) bool {
	switch sc.cfg.Policy {
	case ShortFirst:
		if wa, wb := a.work(), b.work(); wa != wb {
			return wa < wb
		}
	case Priority:
		if pa, pb := a.r.req.Priority, b.r.req.Priority; pa != pb {
			return pa > pb
		}
	}
	if a.r.id != b.r.id {
		return a.r.id < b.r.id
	}
	return a.index < b.index
}

// enqueue puts s into the waiting queue at its policy position.
func (sc *scheduler) enqueue(s *seq) {
	s.state = waiting
	i, _ := slices.BinarySearchFunc(sc.waiting, s, func(w, s *seq) int {
		if sc.before(w, s) {
			return -1
		}
		return 1
	})
	sc.waiting = slices.Insert(sc.waiting, i, s)
}

// schedule plans the next step over at most maxSeqs sequences: every running sequence
// that is not in flight first (preempting from the back of the running list, never a
// sequence in flight, when blocks run out), then swapped sequences, then waiting ones
// while the token budget, the running limit and the free blocks allow. It allocates the
// planned tokens' blocks; the plan is in sc.plan and sc.count.
func (sc *scheduler) schedule(maxSeqs int) {
	sc.plan, sc.count = sc.plan[:0], sc.count[:0]
	budget := sc.cfg.MaxBatchTokens
	preempted := false

	for i := 0; i < len(sc.running) && budget > 0 && len(sc.plan) < maxSeqs; i++ {
		s := sc.running[i]
		n := min(s.remaining(), budget, sc.cfg.PrefillChunk)
		if n <= 0 || s.inflight {
			continue
		}
		for !sc.cache.Append(s.table, n) {
			preempted = true
			victim := sc.victim(i)
			sc.preempt(victim)
			if victim == s {
				n = 0
				i-- // the next sequence has moved into s's place
				break
			}
		}
		if n > 0 {
			sc.add(s, n)
			budget -= n
		}
	}
	if preempted {
		return // nothing new joins a step that had to preempt
	}

	for len(sc.swapped) > 0 && budget > 0 && len(sc.running) < sc.cfg.MaxRunning && len(sc.plan) < maxSeqs {
		s := sc.swapped[0]
		if sc.cache.BlocksNeeded(s.table, s.swapLen+1) > sc.cache.NumFree() {
			break
		}
		sc.swapped = sc.swapped[1:]
		sc.cache.Append(s.table, s.swapLen)
		if !sc.spill.loadSeq(s) {
			sc.cache.Release(s.table)
			sc.enqueue(s)
			continue
		}
		sc.running = append(sc.running, s)
		s.state = running
		n := min(s.remaining(), budget, sc.cfg.PrefillChunk)
		sc.cache.Append(s.table, n)
		sc.add(s, n)
		budget -= n
	}
	if len(sc.swapped) > 0 {
		return // swapped sequences resume before new ones are admitted
	}

	for len(sc.waiting) > 0 && budget > 0 && len(sc.plan) < maxSeqs {
		s := sc.waiting[0]
		if len(sc.running)+s.r.req.N-1 >= sc.cfg.MaxRunning && len(sc.running) > 0 {
			break
		}
		n, ok := sc.admit(s, budget)
		if !ok {
			break
		}
		sc.waiting = sc.waiting[1:]
		sc.running = append(sc.running, s)
		s.state = running
		sc.add(s, n)
		budget -= n
	}
}

// victim picks the sequence to preempt so that running[i] can grow: the last running
// sequence that is neither in flight nor already planned (those are before i), which is
// running[i] itself when every later one is in flight.
func (sc *scheduler) victim(i int) *seq {
	for j := len(sc.running) - 1; j > i; j-- {
		if !sc.running[j].inflight {
			return sc.running[j]
		}
	}
	return sc.running[i]
}

func (sc *scheduler) add(s *seq, n int) {
	sc.plan = append(sc.plan, s)
	sc.count = append(sc.count, n)
}

// admit gives a waiting sequence its cached prefix and the blocks for its first chunk of
// at most budget tokens. When the blocks are not there it undoes everything (ok false).
func (sc *scheduler) admit(s *seq, budget int) (n int, ok bool) {
	bs := sc.cfg.BlockSize
	if !sc.cfg.NoPrefixCaching {
		full := len(s.tokens) / bs
		sc.extendHashes(s, full)
		// The longest cached prefix, block by block from memory or else from disk.
		hits := 0
		for hits < full {
			h := s.hashes[hits]
			if b, ok := sc.cache.Lookup(h); ok {
				sc.cache.AppendCached(s.table, b)
				hits++
				continue
			}
			if sc.spill == nil || !sc.cache.Append(s.table, bs) {
				break
			}
			if !sc.spill.loadPrefix(s.r, h, s.table.Blocks[hits]) {
				sc.cache.Truncate(s.table, hits*bs)
				break
			}
			sc.cache.SetHash(s.table, hits, h)
			hits++
		}
		if s.index == 0 && s.generated() == s.r.req.Resumed {
			sc.prefixQueried += int64(s.prompt)
			sc.prefixHit += int64(min(hits*bs, s.prompt-1))
		}
		if s.table.Len == len(s.tokens) {
			// Everything is cached: run the last token again for its logits.
			sc.cache.Truncate(s.table, len(s.tokens)-1)
		}
	}
	n = min(s.remaining(), budget, sc.cfg.PrefillChunk)
	// Keep a block of headroom for every running sequence, so that admitting this one does
	// not force a preemption as soon as they grow.
	if sc.cache.BlocksNeeded(s.table, n)+len(sc.running) > sc.cache.NumFree() || !sc.cache.Append(s.table, n) {
		sc.cache.Release(s.table)
		return 0, false
	}
	return n, true
}

// extendHashes computes the chained hashes of s's first full blocks, up to n of them.
func (sc *scheduler) extendHashes(s *seq, n int) {
	bs := sc.cfg.BlockSize
	for i := len(s.hashes); i < n; i++ {
		parent := sc.salt
		if i > 0 {
			parent = s.hashes[i-1]
		}
		s.hashes = append(s.hashes, blocks.ChainHash(parent, s.tokens[i*bs:(i+1)*bs]))
	}
}

// hashFull enters every block of s that the last step filled into the prefix cache.
func (sc *scheduler) hashFull(s *seq) {
	if sc.cfg.NoPrefixCaching {
		return
	}
	full := s.table.Len / sc.cfg.BlockSize
	sc.extendHashes(s, full)
	for i := 0; i < full; i++ {
		if _, ok := sc.cache.Hash(s.table.Blocks[i]); !ok {
			sc.cache.SetHash(s.table, i, s.hashes[i])
		}
	}
}

// preempt takes v off the running list, saving its blocks to disk (Swap) or dropping them
// (Recompute). v is not in flight.
func (sc *scheduler) preempt(v *seq) {
	sc.running = slices.DeleteFunc(sc.running, func(x *seq) bool { return x == v })
	sc.preemptions++
	if sc.cfg.Preemption == Swap && sc.spill != nil && sc.spill.saveSeq(v) {
		v.swapLen = v.table.Len
		sc.cache.Release(v.table)
		v.state = swapped
		sc.swapped = append(sc.swapped, v)
		return
	}
	sc.cache.Release(v.table)
	sc.enqueue(v)
}

// remove takes s out of whichever queue holds it and frees its blocks.
func (sc *scheduler) remove(s *seq) {
	switch s.state {
	case running:
		sc.running = slices.DeleteFunc(sc.running, func(x *seq) bool { return x == s })
	case waiting:
		sc.waiting = slices.DeleteFunc(sc.waiting, func(x *seq) bool { return x == s })
	case swapped:
		sc.swapped = slices.DeleteFunc(sc.swapped, func(x *seq) bool { return x == s })
		if sc.spill != nil {
			sc.spill.dropSeq(s)
		}
	}
	sc.cache.Release(s.table)
	s.state = finished
}

// fork makes samples 1..N-1 of s's request share s's blocks; they join the running list
// right after s and sample from the same logits in this step.
func (sc *scheduler) fork(s *seq) []*seq {
	r := s.r
	for i := 1; i < r.req.N; i++ {
		f := &seq{
			id:     s.id + uint64(i),
			r:      r,
			index:  i,
			tokens: slices.Clone(s.tokens),
			prompt: s.prompt,
			table:  sc.cache.Fork(s.table),
			hashes: slices.Clone(s.hashes),
			state:  running,
			params: s.params,
		}
		f.params.Seed = s.params.Seed + uint64(i)
		r.seqs[i] = f
		sc.running = append(sc.running, f)
	}
	r.forked = true
	return r.seqs[1:]
}

// resident is the KV memory in use, in blocks: blocks held by tables plus free blocks that
// still hold a cached prefix.
func (sc *scheduler) resident(freeCached int) int {
	return sc.cache.NumBlocks() - sc.cache.NumFree() + freeCached
}

// idle reports whether there is nothing to run.
func (sc *scheduler) idle() bool {
	return len(sc.running) == 0 && len(sc.waiting) == 0 && len(sc.swapped) == 0
}

// check verifies the scheduler's invariants against the cache: queued and swapped
// sequences hold no blocks, running ones hold no more than their tokens, each sequence is
// in exactly the queue its state names, and the cache's own invariants hold.
func (sc *scheduler) check() error {
	seen := make(map[*seq]bool)
	for _, q := range []struct {
		seqs []*seq
		st   state
	}{{sc.waiting, waiting}, {sc.running, running}, {sc.swapped, swapped}} {
		for _, s := range q.seqs {
			if seen[s] {
				return fmt.Errorf("sequence %d queued twice", s.id)
			}
			seen[s] = true
			if s.state != q.st {
				return fmt.Errorf("sequence %d in queue %d has state %d", s.id, q.st, s.state)
			}
			if q.st != running && s.table.Len != 0 {
				return fmt.Errorf("sequence %d (state %d) holds %d tokens of blocks", s.id, s.state, s.table.Len)
			}
			if s.table.Len > len(s.tokens) {
				return fmt.Errorf("sequence %d holds %d tokens of blocks for %d tokens", s.id, s.table.Len, len(s.tokens))
			}
		}
	}
	return sc.cache.Check()
}
