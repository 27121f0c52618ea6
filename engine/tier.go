package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/swap"
)

// tier is the disk tier of one engine: swapped-out blocks of preempted sequences
// (swap.KindPrivate) and cold cached prefix blocks (swap.KindPrefix), in one swap.Store.
// Only the engine's loop calls it, except prefetch goroutines, which only read the store,
// ask the stages (confirm), and hand their results over through a channel.
//
// On a pipeline leader (stages set) the tier also records every prefix block it saves or
// loads, for the stages to repeat (stagedisk.go), and loads only blocks that every stage
// confirmed it holds.
type tier struct {
	store  *swap.Store
	cache  *blocks.Cache
	int8   bool // payloads as int8 groups of int8Group values (fp32 caches only)
	dtype  uint8
	log    *slog.Logger
	onDisk map[blocks.BlockHash]struct{} // prefix blocks the store holds

	buf  []byte    // one block's payload
	f32  []float32 // one block's values, for int8 encoding
	ents []swap.Entry
	cold []int // free cached blocks, coldest first, reused by offload
	out  []int // the block of each entry of ents, in offload

	stages bool          // a pipeline leader: record moves, load only confirmed blocks
	have   KeyHolder     // asks the stages which keys they hold; nil: none are
	copies []blocks.Copy // copy-on-write copies made before the last recorded move
	ops    []DiskOp      // moves not yet sent to the stages

	bytesOut, bytesIn int64 // payload bytes moved, for Stats
}

const int8Group = 32

func openTier(ctx context.Context, cfg Config, cache *blocks.Cache, identity string) (*tier, error) {
	if cfg.SwapInt8 && cfg.KVDType != blocks.FP32 {
		return nil, fmt.Errorf("engine: int8 swap encoding needs an fp32 KV cache, not %v", cfg.KVDType)
	}
	sc := swap.DefaultConfig(cfg.SwapPath, identity)
	sc.MaxBytes = cfg.SwapMaxBytes
	sc.NoSync = true // a crash loses only cache: the file is checked and set aside if torn
	sc.Logger = cfg.Logger
	store, err := swap.Open(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("engine: disk tier: %w", err)
	}
	t := &tier{
		store:  store,
		cache:  cache,
		int8:   cfg.SwapInt8,
		dtype:  uint8(cfg.KVDType),
		log:    cfg.Logger,
		onDisk: make(map[blocks.BlockHash]struct{}),
		stages: cfg.Downstream != nil,
	}
	t.have, _ = cfg.Downstream.(KeyHolder)
	// A sequence of a previous run (KindPrivate) is dropped: nobody will resume it.
	kept, err := store.Prune(ctx, func(k swap.Key, m swap.Meta) bool {
		return m.Kind != swap.KindPrivate && m.DType == t.dtype && (m.Encoding == swap.EncodingInt8) == t.int8
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("engine: disk tier: %w", err)
	}
	for _, k := range kept {
		t.onDisk[blocks.BlockHash(k)] = struct{}{}
	}
	if len(t.onDisk) > 0 {
		cfg.Logger.Info("disk tier reopened: cached prefixes serve hits again", "path", cfg.SwapPath, "blocks", len(t.onDisk))
	}
	return t, nil
}

func (t *tier) close() error { return t.store.Close() }

// privateKey names block i of sequence id on disk.
func privateKey(id uint64, i int) swap.Key {
	var k swap.Key
	k[0] = 0xff // prefix hashes are SHA-256 outputs; this marks an engine-made key
	binary.LittleEndian.PutUint64(k[8:], id)
	binary.LittleEndian.PutUint64(k[16:], uint64(i))
	return k
}

// encode turns block b into its on-disk payload, appended to dst.
func (t *tier) encode(dst []byte, b int) ([]byte, swap.Encoding) {
	if !t.int8 {
		return t.cache.ExportBlock(dst, b), swap.EncodingRaw
	}
	t.buf = t.cache.ExportBlock(t.buf[:0], b)
	t.f32 = bytesToF32(t.f32[:0], t.buf)
	return swap.EncodeInt8(dst, t.f32, int8Group), swap.EncodingInt8
}

// decode writes an on-disk payload into block b.
func (t *tier) decode(b int, payload []byte, enc swap.Encoding) error {
	if enc == swap.EncodingInt8 {
		var err error
		if t.f32, err = swap.DecodeInt8(t.f32[:0], payload, int8Group); err != nil {
			return err
		}
		t.buf = f32ToBytes(t.buf[:0], t.f32)
		payload = t.buf
	}
	return t.cache.ImportBlock(b, payload)
}

func (t *tier) saveSeq(s *seq) bool {
	t.ents = t.ents[:0]
	for i, b := range s.table.Blocks {
		payload, enc := t.encode(nil, b)
		t.ents = append(t.ents, swap.Entry{
			Key:     privateKey(s.id, i),
			Meta:    swap.Meta{Kind: swap.KindPrivate, DType: t.dtype, Encoding: enc},
			Payload: payload,
		})
	}
	if err := t.store.PutBatch(context.Background(), t.ents); err != nil {
		t.log.Warn("disk tier refused a swap-out; the sequence will recompute", "seq", s.id, "err", err)
		return false
	}
	for _, e := range t.ents {
		t.bytesOut += int64(len(e.Payload))
	}
	s.swapKeys = len(s.table.Blocks)
	return true
}

func (t *tier) loadSeq(s *seq) bool {
	defer t.dropSeq(s)
	t.ents = t.ents[:0]
	for i := range s.swapKeys {
		t.ents = append(t.ents, swap.Entry{Key: privateKey(s.id, i)})
	}
	if err := t.store.GetBatch(context.Background(), t.ents); err != nil {
		t.log.Warn("disk tier read failed; the sequence recomputes", "seq", s.id, "err", err)
		return false
	}
	for i, e := range t.ents {
		if e.Err == nil {
			e.Err = t.decode(s.table.Blocks[i], e.Payload, e.Meta.Encoding)
		}
		if e.Err != nil {
			t.log.Warn("swapped block lost; the sequence recomputes", "seq", s.id, "block", i, "err", e.Err)
			return false
		}
		t.bytesIn += int64(len(e.Payload))
	}
	return true
}

func (t *tier) dropSeq(s *seq) {
	if s.swapKeys == 0 {
		return
	}
	keys := make([]swap.Key, s.swapKeys)
	for i := range keys {
		keys[i] = privateKey(s.id, i)
	}
	s.swapKeys = 0
	if err := t.store.DeleteBatch(context.Background(), keys); err != nil {
		t.log.Warn("disk tier delete failed", "seq", s.id, "err", err)
	}
}

func (t *tier) loadPrefix(r *request, h blocks.BlockHash, b int) bool {
	if _, ok := t.onDisk[h]; !ok {
		return false
	}
	var payload []byte
	var enc swap.Encoding
	if p := r.prefetched(h); p != nil {
		payload, enc = p.payload, p.enc
	} else if t.stages {
		return false // not confirmed by every stage
	} else {
		m, data, err := t.store.Get(context.Background(), swap.Key(h), nil)
		if err != nil {
			if errors.Is(err, swap.ErrNotFound) || errors.Is(err, swap.ErrCorrupt) {
				delete(t.onDisk, h)
			}
			return false
		}
		payload, enc = data, m.Encoding
	}
	if err := t.decode(b, payload, enc); err != nil {
		delete(t.onDisk, h)
		return false
	}
	t.bytesIn += int64(len(payload))
	t.record(DiskOp{Load: true, Block: b, Key: h})
	return true
}

// offload works while resident KV memory is above the high watermark: it writes every
// free cached block that the disk does not hold yet (so that no cached prefix is lost when
// allocation later evicts it from memory), then takes the coldest of them out of memory
// until usage is under the low watermark.
func (t *tier) offload(sc *scheduler, high, low float64) {
	n := float64(sc.cache.NumBlocks())
	// Cached blocks bound the free cached ones: below the watermark even counting all of
	// them, there is no need to walk the free list.
	if float64(sc.resident(sc.cache.NumCached())) <= high*n {
		return
	}
	t.cold = sc.cache.FreeCached(t.cold[:0])
	cold := t.cold
	if float64(sc.resident(len(cold))) <= high*n {
		return
	}
	t.ents, t.out = t.ents[:0], t.out[:0]
	for _, b := range cold {
		h, _ := sc.cache.Hash(b)
		if _, ok := t.onDisk[h]; ok {
			continue
		}
		t.out = append(t.out, b)
		payload, enc := t.encode(nil, b)
		t.ents = append(t.ents, swap.Entry{
			Key:     swap.Key(h),
			Meta:    swap.Meta{Kind: swap.KindPrefix, DType: t.dtype, Encoding: enc},
			Payload: payload,
		})
	}
	if len(t.ents) > 0 {
		if err := t.store.PutBatch(context.Background(), t.ents); err != nil {
			// The tier is full or failing: the blocks stay in memory and are evicted as usual.
			t.log.Warn("disk tier refused cold blocks; they stay in memory", "blocks", len(t.ents), "err", err)
			return
		}
		for i, e := range t.ents {
			t.onDisk[blocks.BlockHash(e.Key)] = struct{}{}
			t.bytesOut += int64(len(e.Payload))
			t.record(DiskOp{Block: t.out[i], Key: blocks.BlockHash(e.Key)})
		}
	}
	for i := 0; i < len(cold) && float64(sc.resident(len(cold)-i)) > low*n; i++ {
		sc.cache.Uncache(cold[i])
	}
}

// prefetch starts reading the prompt's prefix blocks that only the disk holds, so that
// admission finds them in memory. The reads run on their own goroutine; r.prefetched
// waits for them.
func (t *tier) prefetch(r *request) {
	var keys []swap.Key
	for _, h := range r.hashes {
		if _, ok := t.cache.Lookup(h); ok {
			continue
		}
		if _, ok := t.onDisk[h]; !ok {
			break // the chain stops here
		}
		keys = append(keys, swap.Key(h))
	}
	if len(keys) == 0 || (t.stages && t.have == nil) {
		return
	}
	p := &prefetch{done: make(chan struct{}), blocks: make(map[blocks.BlockHash]prefetched, len(keys))}
	r.prefetch = p
	store := t.store
	go func() {
		defer close(p.done)
		if keys = t.confirm(keys); len(keys) == 0 {
			return
		}
		ents := make([]swap.Entry, len(keys))
		for i, k := range keys {
			ents[i].Key = k
		}
		if err := store.GetBatch(context.Background(), ents); err != nil {
			return
		}
		for _, e := range ents {
			if e.Err == nil {
				p.blocks[blocks.BlockHash(e.Key)] = prefetched{payload: e.Payload, enc: e.Meta.Encoding}
			}
		}
	}()
}

// prefetch is the result of one request's background reads.
type prefetch struct {
	done   chan struct{} // closed when blocks is complete
	blocks map[blocks.BlockHash]prefetched
}

type prefetched struct {
	payload []byte
	enc     swap.Encoding
}

// prefetched returns the block named h if r's prefetch read it, waiting for the prefetch
// to finish.
func (r *request) prefetched(h blocks.BlockHash) *prefetched {
	if r.prefetch == nil {
		return nil
	}
	<-r.prefetch.done
	p, ok := r.prefetch.blocks[h]
	if !ok {
		return nil
	}
	return &p
}

func bytesToF32(dst []float32, src []byte) []float32 {
	for i := 0; i+4 <= len(src); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(src[i:])))
	}
	return dst
}

func f32ToBytes(dst []byte, src []float32) []byte {
	for _, v := range src {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}
