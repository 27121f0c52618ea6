package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/swap"
)

// The disk tier of a pipeline. The leader's scheduler decides every move between memory
// and disk, as it decides allocation: each stage keeps the K/V of its own layers in its own
// swap file, under the same keys, and repeats the leader's moves, which every StageStep
// carries (StageStep.Disk) in the order the leader made them, among its copy-on-write
// copies. Before it loads disk-held prefix blocks for a request, the leader asks the
// stages which of those keys they hold (KeyHolder) and loads only the prefix that every
// stage holds; the rest is recomputed. A stage that then fails to read a key it confirmed
// fails the step, and the leader ends the pipeline's requests with ErrPipeline.

// DiskOp is one move of a prefix block between a pipeline leader's memory and its disk
// tier, which every later stage repeats on its own layers' K/V.
type DiskOp struct {
	// Load is false for a save (block Block's K/V written under Key) and true for a load
	// (Key read into block Block).
	Load  bool
	Block int
	Key   blocks.BlockHash
	// At is how many of the step's Copies the leader made before this move: a stage
	// applies Copies[:At] first.
	At int
}

// KeyHolder is a Downstream whose stages keep disk tiers. Have reports how many of keys,
// from the first, every later stage holds on disk. It may be called from any goroutine,
// concurrently with Step. A pipeline leader whose Downstream is not a KeyHolder loads
// nothing from its disk tier (the stages could not follow): prefixes only the disk holds
// are recomputed.
type KeyHolder interface {
	Have(ctx context.Context, keys []blocks.BlockHash) (int, error)
}

// haveTimeout bounds the question to the stages; past it the prefix is recomputed.
const haveTimeout = time.Second

// SwapIdentity names the swap file of layers [first, last) of a model with the given KV
// layout: a pipeline leader's file and every stage's file differ, and a file written for
// another model, layout or layer range is set aside when opened (swap.Config.Identity).
// A file of all layers (a single-process engine) carries no range.
func SwapIdentity(model string, kv blocks.DType, blockSize, first, last int) string {
	id := fmt.Sprintf("%s|kv=%v|block=%d", model, kv, blockSize)
	if last > 0 {
		id += fmt.Sprintf("|layers=%d:%d", first, last)
	}
	return id
}

// record notes a move for the stages, after the copy-on-write copies made so far.
func (t *tier) record(op DiskOp) {
	if !t.stages {
		return
	}
	t.copies = t.cache.TakeCopies(t.copies)
	op.At = len(t.copies)
	t.ops = append(t.ops, op)
}

// takeStageOps appends the copy-on-write copies and the disk moves made since the last
// step to copies and disk, in the order the leader made them, for the next StageStep.
func (e *Engine) takeStageOps(copies []blocks.Copy, disk []DiskOp) ([]blocks.Copy, []DiskOp) {
	if t := e.tier; t != nil {
		base := len(copies)
		copies = append(copies, t.copies...)
		for _, op := range t.ops {
			op.At += base
			disk = append(disk, op)
		}
		t.copies, t.ops = t.copies[:0], t.ops[:0]
	}
	return e.cache.TakeCopies(copies), disk
}

// flushStageOps sends the disk moves made since the last step to the stages in a step of
// no sequences, when the loop is about to idle with no step in flight: a prompt that arrives next, or a restart,
// then finds the stages holding what the leader's disk holds. A failed send ends the
// session like a failed step, so the memory prefix cache is forgotten with it.
func (e *Engine) flushStageOps() {
	if e.cfg.Downstream == nil || e.tier == nil || len(e.tier.ops) == 0 {
		return
	}
	st := &StageStep{}
	st.Copies, st.Disk = e.takeStageOps(nil, nil)
	err := e.cfg.Downstream.Send(context.Background(), st)
	if err == nil {
		_, err = e.cfg.Downstream.Recv(context.Background()) // no step is in flight: this is its reply
	}
	if err != nil {
		e.cfg.Logger.Warn("sending disk moves to the stages failed; they will recompute those blocks", "moves", len(st.Disk), "err", err)
		e.forgetPrefixes()
	}
}

// confirm cuts keys, a prompt's prefix blocks that only the leader's disk holds, to those
// every stage holds too. Without stages it returns keys unchanged.
func (t *tier) confirm(keys []swap.Key) []swap.Key {
	if !t.stages {
		return keys
	}
	if t.have == nil {
		return nil
	}
	hs := make([]blocks.BlockHash, len(keys))
	for i, k := range keys {
		hs[i] = blocks.BlockHash(k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), haveTimeout)
	defer cancel()
	n, err := t.have.Have(ctx, hs)
	if err != nil {
		t.log.Warn("asking the stages for disk-held blocks; the prefix is recomputed", "blocks", len(keys), "err", err)
		return nil
	}
	return keys[:min(max(n, 0), len(keys))]
}
