package shard

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// encodeStep writes st into req for the wire, reusing req's slices (req is not retained
// by gRPC after Send returns). hidden is (tokens, dim).
func encodeStep(req *pb.StepRequest, id, epoch uint64, st *engine.StageStep, hidden []float32) {
	req.Id, req.Epoch = id, epoch
	req.Lens, req.News, req.Blocks = req.Lens[:0], req.News[:0], req.Blocks[:0]
	for _, q := range st.Seqs {
		req.Lens = append(req.Lens, int32(q.Len))
		req.News = append(req.News, int32(q.New))
		for _, b := range q.Blocks {
			req.Blocks = append(req.Blocks, int32(b))
		}
	}
	req.Copies = req.Copies[:0]
	for _, c := range st.Copies {
		req.Copies = append(req.Copies, int32(c.Dst), int32(c.Src))
	}
	for len(req.Disk) < len(st.Disk) {
		req.Disk = append(req.Disk, new(pb.DiskOp))
	}
	req.Disk = req.Disk[:len(st.Disk)]
	for i, op := range st.Disk {
		*req.Disk[i] = pb.DiskOp{Load: op.Load, Block: int32(op.Block), Key: append(req.Disk[i].Key[:0], op.Key[:]...), At: int32(op.At)}
	}
	req.Hidden = appendFloats(req.Hidden[:0], hidden)
	for len(req.Samples) < len(st.Samples) {
		req.Samples = append(req.Samples, new(pb.StageSample))
	}
	req.Samples = req.Samples[:len(st.Samples)]
	for i, sp := range st.Samples {
		*req.Samples[i] = pb.StageSample{Row: int32(sp.Row), Temperature: sp.Params.Temperature,
			TopP: sp.Params.TopP, Seed: sp.Params.Seed, Draw: int32(sp.Draw)}
	}
}

// stepDecoder turns StepRequests into engine.StageSteps, reusing its buffers: each
// decoded step is valid until the next decode.
type stepDecoder struct {
	blockSize, maxTokens, dim int
	step                      engine.StageStep
	tables                    []int     // the block tables of step.Seqs, concatenated
	hidden                    []float32 // (maxTokens, dim)
}

func newStepDecoder(blockSize, maxTokens, dim int) *stepDecoder {
	return &stepDecoder{blockSize: blockSize, maxTokens: maxTokens, dim: dim, hidden: make([]float32, maxTokens*dim)}
}

// decode checks req's shapes (block ids and sample parameters are the Runner's to check)
// and returns it as a step.
func (d *stepDecoder) decode(req *pb.StepRequest) (*engine.StageStep, error) {
	if len(req.Lens) != len(req.News) {
		return nil, fmt.Errorf("step %d: %d lengths for %d sequences", req.Id, len(req.Lens), len(req.News))
	}
	if len(req.Copies)%2 != 0 {
		return nil, fmt.Errorf("step %d: odd copies list (%d ids)", req.Id, len(req.Copies))
	}
	st := &d.step
	st.Seqs, st.Copies, st.Disk, st.Samples = st.Seqs[:0], st.Copies[:0], st.Disk[:0], st.Samples[:0]
	tokens, nblocks := 0, 0
	for i, l := range req.Lens {
		n := req.News[i]
		if n < 1 || n > l {
			return nil, fmt.Errorf("step %d: sequence %d runs %d of %d tokens", req.Id, i, n, l)
		}
		tokens += int(n)
		nblocks += (int(l) + d.blockSize - 1) / d.blockSize
		if tokens > d.maxTokens {
			return nil, fmt.Errorf("step %d: more than the session's %d tokens", req.Id, d.maxTokens)
		}
		if nblocks > len(req.Blocks) {
			return nil, fmt.Errorf("step %d: %d block ids, sequence %d needs more", req.Id, len(req.Blocks), i)
		}
	}
	if nblocks != len(req.Blocks) {
		return nil, fmt.Errorf("step %d: %d block ids for tables of %d", req.Id, len(req.Blocks), nblocks)
	}
	if len(req.Hidden) != 4*tokens*d.dim {
		return nil, fmt.Errorf("step %d: %d bytes of hidden states for %d tokens of %d floats", req.Id, len(req.Hidden), tokens, d.dim)
	}
	d.tables = d.tables[:0]
	for _, b := range req.Blocks {
		d.tables = append(d.tables, int(b))
	}
	off := 0
	for i, l := range req.Lens {
		nb := (int(l) + d.blockSize - 1) / d.blockSize
		st.Seqs = append(st.Seqs, engine.StageSeq{Blocks: d.tables[off : off+nb : off+nb], Len: int(l), New: int(req.News[i])})
		off += nb
	}
	for k := 0; k < len(req.Copies); k += 2 {
		st.Copies = append(st.Copies, blocks.Copy{Dst: int(req.Copies[k]), Src: int(req.Copies[k+1])})
	}
	for _, op := range req.Disk {
		if len(op.Key) != len(blocks.BlockHash{}) {
			return nil, fmt.Errorf("step %d: disk move with a key of %d bytes", req.Id, len(op.Key))
		}
		st.Disk = append(st.Disk, engine.DiskOp{Load: op.Load, Block: int(op.Block), Key: blocks.BlockHash(op.Key), At: int(op.At)})
	}
	st.Hidden = decodeFloats(d.hidden[:tokens*d.dim], req.Hidden)
	for _, sp := range req.Samples {
		st.Samples = append(st.Samples, engine.SampleSpec{Row: int(sp.Row), Draw: int(sp.Draw),
			Params: sample.Params{Temperature: sp.Temperature, TopP: sp.TopP, Seed: sp.Seed}})
	}
	return st, nil
}

// appendFloats appends xs to b as little-endian IEEE float32s.
func appendFloats(b []byte, xs []float32) []byte {
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// decodeFloats fills dst from len(dst) little-endian IEEE float32s in b.
func decodeFloats(dst []float32, b []byte) []float32 {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return dst
}
