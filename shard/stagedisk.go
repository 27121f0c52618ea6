package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
	"github.com/kvmesh/kvmesh/swap"
)

// errDiskLoad: a step's disk load failed at this stage (the key is missing or corrupt in
// its swap file); the step fails with DATA_LOSS and the leader ends its requests.
var errDiskLoad = errors.New("stage: disk load failed")

// maxHaveKeys bounds the keys of one Have.
const maxHaveKeys = 4096

// stageDisk is a stage's disk tier: the K/V of the stage's layers for the prefix blocks
// its pipeline's leader moved to disk, under the leader's keys, in a bbolt file of the
// stage's own (swap.Store). The leader decides every move; the stage repeats them
// (engine.DiskOp) and answers Have from the keys it holds.
//
// Its identity (engine.SwapIdentity) names the model, the KV layout and the layer range,
// so a file written for another of them is set aside when opened (swap's Open logs it).
// A StageServer opens it at the first Hello and keeps it while later sessions have the
// same layout; prefix blocks of an earlier process serve again (a warm restart) once the
// leader's Have finds them.
type stageDisk struct {
	store *swap.Store
	id    string // swap identity
	dtype uint8  // the engine's tag of the KV type, as the leader's tier writes it
	log   *slog.Logger

	mu   sync.Mutex // protects held
	held map[blocks.BlockHash]struct{}

	bytesOut, bytesIn atomic.Int64 // payload bytes saved and loaded
}

// openStageDisk opens (or creates) the swap file at path for identity id and lists the
// prefix blocks it holds; entries of another KV type or of a sequence are deleted.
func openStageDisk(ctx context.Context, path, id string, dtype blocks.DType, maxBytes int64, log *slog.Logger) (*stageDisk, error) {
	sc := swap.DefaultConfig(path, id)
	sc.MaxBytes, sc.NoSync, sc.Logger = maxBytes, true, log // a cache: a torn file is set aside
	store, err := swap.Open(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("stage disk tier: %w", err)
	}
	d := &stageDisk{store: store, id: id, dtype: uint8(dtype), log: log, held: map[blocks.BlockHash]struct{}{}}
	kept, err := store.Prune(ctx, func(k swap.Key, m swap.Meta) bool {
		return m.Kind == swap.KindPrefix && m.DType == d.dtype && m.Encoding == swap.EncodingRaw
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("stage disk tier: %w", err)
	}
	for _, k := range kept {
		d.held[blocks.BlockHash(k)] = struct{}{}
	}
	if len(d.held) > 0 {
		log.Info("stage disk tier reopened: its prefix blocks serve again once the leader asks", "path", path, "blocks", len(d.held))
	}
	return d, nil
}

func (d *stageDisk) close() error { return d.store.Close() }

// have counts the keys, from the first, that the file holds.
func (d *stageDisk) have(keys []blocks.BlockHash) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, k := range keys {
		if _, ok := d.held[k]; !ok {
			return i
		}
	}
	return len(keys)
}

func (d *stageDisk) holds(k blocks.BlockHash) bool { return d.have([]blocks.BlockHash{k}) == 1 }

func (d *stageDisk) setHeld(k blocks.BlockHash, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok {
		d.held[k] = struct{}{}
	} else {
		delete(d.held, k)
	}
}

// put writes a batch of saved blocks. A refusal (the tier full, a failing disk) is logged
// and leaves them out: Have will not count them, and the leader recomputes them.
func (d *stageDisk) put(ents []swap.Entry) {
	if len(ents) == 0 {
		return
	}
	if err := d.store.PutBatch(context.Background(), ents); err != nil {
		d.log.Warn("stage disk tier refused blocks; the leader will recompute them", "blocks", len(ents), "err", err)
		return
	}
	for _, e := range ents {
		d.setHeld(blocks.BlockHash(e.Key), true)
		d.bytesOut.Add(int64(len(e.Payload)))
	}
}

// load reads key k into block b of cache.
func (d *stageDisk) load(cache *blocks.Cache, k blocks.BlockHash, b int, buf []byte) ([]byte, error) {
	m, payload, err := d.store.Get(context.Background(), swap.Key(k), buf[:0])
	if err == nil && (m.DType != d.dtype || m.Encoding != swap.EncodingRaw) {
		err = fmt.Errorf("stored as type %d encoding %d", m.DType, m.Encoding)
	}
	if err == nil {
		err = cache.ImportBlock(b, payload)
	}
	if err != nil {
		d.setHeld(k, false)
		return payload, fmt.Errorf("%w: block %d key %x: %v", errDiskLoad, b, k[:8], err)
	}
	d.bytesIn.Add(int64(len(payload)))
	return payload, nil
}

// moves repeats the leader's copy-on-write copies and disk moves of st in its mirror cache,
// in the leader's order. A save of a block this session never wrote is skipped (the
// leader's move dates from before the session, whose cache started empty).
func (s *Runner) moves(st *engine.StageStep) error {
	n := s.cache.NumBlocks()
	done := 0 // copies applied
	copyTo := func(k int) error {
		for ; done < k; done++ {
			cp := st.Copies[done]
			if cp.Dst < 0 || cp.Dst >= n || cp.Src < 0 || cp.Src >= n {
				return fmt.Errorf("stage: copy %v outside %d blocks", cp, n)
			}
			s.cache.CopyBlock(cp.Dst, cp.Src)
			s.written[cp.Dst] = s.written[cp.Src]
		}
		return nil
	}
	s.saves = s.saves[:0]
	for _, op := range st.Disk {
		if op.At < done || op.At > len(st.Copies) || op.Block < 0 || op.Block >= n {
			return fmt.Errorf("stage: disk move %+v out of order or outside %d blocks and %d copies", op, n, len(st.Copies))
		}
		if err := copyTo(op.At); err != nil {
			return err
		}
		switch {
		case s.disk == nil && op.Load:
			return fmt.Errorf("%w: block %d: this stage has no disk tier", errDiskLoad, op.Block)
		case s.disk == nil:
		case !op.Load:
			if s.written[op.Block] && !s.disk.holds(op.Key) {
				s.saves = append(s.saves, swap.Entry{Key: swap.Key(op.Key),
					Meta: swap.Meta{Kind: swap.KindPrefix, DType: s.disk.dtype}, Payload: s.cache.ExportBlock(nil, op.Block)})
			}
		default:
			s.disk.put(s.saves) // a save before a load: it may be the same key
			s.saves = s.saves[:0]
			var err error
			if s.buf, err = s.disk.load(s.cache, op.Key, op.Block, s.buf); err != nil {
				return err
			}
			s.written[op.Block] = true
		}
	}
	if s.disk != nil {
		s.disk.put(s.saves)
	}
	return copyTo(len(st.Copies))
}

// openDisk returns the disk tier for a session of KV type kv and block size bs: the open
// one if its layout is the same, else the file reopened under the new identity (which
// sets aside the file of the old). Without SwapPath, or when the file cannot be opened
// (logged), it returns nil and the stage serves without a disk tier. The caller has
// closed the previous session, so no Runner uses the disk being replaced.
func (s *StageServer) openDisk(ctx context.Context, kv blocks.DType, bs int) *stageDisk {
	if s.cfg.SwapPath == "" {
		return nil
	}
	id := engine.SwapIdentity(s.cfg.Model.Identity(), kv, bs, s.cfg.Range.First, s.cfg.Range.Last)
	s.diskMu.Lock()
	defer s.diskMu.Unlock()
	s.mu.Lock()
	old := s.disk
	s.mu.Unlock()
	if old != nil && old.id == id {
		return old
	}
	if old != nil {
		s.mu.Lock()
		s.disk = nil
		s.mu.Unlock()
		if err := old.close(); err != nil {
			s.cfg.Logger.Warn("closing the stage disk tier", "err", err)
		}
	}
	d, err := openStageDisk(ctx, s.cfg.SwapPath, id, kv, s.cfg.SwapMaxBytes, s.cfg.Logger)
	if err != nil {
		s.cfg.Logger.Warn("stage serves without a disk tier", "range", s.cfg.Range.String(), "path", s.cfg.SwapPath, "err", err)
		return nil
	}
	s.mu.Lock()
	stopped := s.stopped
	if !stopped {
		s.disk = d
	}
	s.mu.Unlock()
	if stopped { // Stop ran meanwhile: it closed what it found, so close this one
		d.close()
		return nil
	}
	return d
}

// Have implements the Stage service: how many of the keys, from the first, this stage
// and every later one hold on disk.
func (s *StageServer) Have(ctx context.Context, in *pb.HaveRequest) (*pb.HaveReply, error) {
	const size = len(blocks.BlockHash{})
	if len(in.Keys)%size != 0 || len(in.Keys) > maxHaveKeys*size {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("stage %v: have: %d bytes of keys (at most %d keys of %d bytes)", s.cfg.Range, len(in.Keys), maxHaveKeys, size))
	}
	s.mu.Lock()
	disk, sess := s.disk, s.sess
	s.mu.Unlock()
	if disk == nil || in.Model != s.cfg.Model.Identity() {
		return &pb.HaveReply{}, nil
	}
	keys := make([]blocks.BlockHash, len(in.Keys)/size)
	for i := range keys {
		keys[i] = blocks.BlockHash(in.Keys[i*size : (i+1)*size])
	}
	n := disk.have(keys)
	if n == 0 || s.cfg.Range.Last == s.cfg.Model.Config.Layers {
		return &pb.HaveReply{Held: uint32(n)}, nil
	}
	if sess == nil || sess.down == nil {
		return &pb.HaveReply{}, nil // no session: the next stage is unknown
	}
	r, err := sess.down.Have(ctx, &pb.HaveRequest{Model: in.Model, Keys: in.Keys[:n*size]})
	if err != nil {
		return nil, downErr(s, sess, err)
	}
	return &pb.HaveReply{Held: uint32(min(n, int(r.Held)))}, nil
}

// DiskStats is what a stage's disk tier moved since the server started serving its
// current layout.
type DiskStats struct {
	Blocks            int   // prefix blocks the file holds
	BytesOut, BytesIn int64 // payload bytes saved and loaded
}

// DiskStats reports the stage's disk tier; zero without one.
func (s *StageServer) DiskStats() DiskStats {
	s.mu.Lock()
	d := s.disk
	s.mu.Unlock()
	if d == nil {
		return DiskStats{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return DiskStats{Blocks: len(d.held), BytesOut: d.bytesOut.Load(), BytesIn: d.bytesIn.Load()}
}

// Have implements engine.KeyHolder: how many of keys, from the first, every stage of the
// pipeline holds on disk. Safe concurrently with Step.
func (c *StageClient) Have(ctx context.Context, keys []blocks.BlockHash) (int, error) {
	keys = keys[:min(len(keys), maxHaveKeys)]
	buf := make([]byte, 0, len(keys)*len(blocks.BlockHash{}))
	for _, k := range keys {
		buf = append(buf, k[:]...)
	}
	r, err := c.api.Have(ctx, &pb.HaveRequest{Model: c.cfg.Model, Keys: buf})
	if err != nil {
		return 0, fmt.Errorf("shard: pipeline %q have (via %s): %w: %v", c.cfg.Pipeline, c.cfg.Stages[0], ErrStageBroken, err)
	}
	return min(int(r.Held), len(keys)), nil
}

var _ engine.KeyHolder = (*StageClient)(nil)
