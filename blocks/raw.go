package blocks

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Raw access to a block's bytes, for the disk tier: a block leaves memory as bytes and
// comes back bit-identical into any free block of a cache of the same Config.
//
// The byte layout of one block is its storage region as little-endian values: the K/V
// tiles (K tiles (headSize, blockSize) of every layer and head, then V tiles (blockSize,
// headSize); fp32, fp16 bits, int8, or int4 nibble pairs as storage's pairs says), then for Int8
// and Int4 the fp32 scales (2, layers, kvHeads, blockSize).

// PayloadSize is the number of bytes ExportBlock writes for one block.
func (c *Cache) PayloadSize() int { return c.cfg.BlockBytes(c.cfg.DType) }

// ExportBlock appends block b's K/V bytes to dst and returns the extended slice.
func (c *Cache) ExportBlock(dst []byte, b int) []byte {
	st := c.kv
	e, r := st.shape.elems(), 2*st.shape.rows()
	switch st.dtype {
	case FP32:
		for _, v := range st.f32[b*e : (b+1)*e] {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
	case FP16:
		for _, v := range st.f16[b*e : (b+1)*e] {
			dst = binary.LittleEndian.AppendUint16(dst, v)
		}
	case Int8:
		for _, v := range st.i8[b*e : (b+1)*e] {
			dst = append(dst, byte(v))
		}
	case Int4:
		dst = append(dst, st.i4[b*e/2:(b+1)*e/2]...)
	}
	if st.scale != nil {
		for _, v := range st.scale[b*r : (b+1)*r] {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
	}
	return dst
}

// ImportBlock overwrites block b's K/V with src, bytes that ExportBlock wrote for a cache of
// the same Config. b must be held by exactly one table (just allocated for the import) and
// must not be in the prefix cache.
func (c *Cache) ImportBlock(b int, src []byte) error {
	if len(src) != c.PayloadSize() {
		return fmt.Errorf("%w: %d bytes, want %d for %v blocks of %+v", ErrBadPayload, len(src), c.PayloadSize(), c.cfg.DType, c.cfg.Shape)
	}
	if !c.cfg.Mirror {
		if ref := c.pool.Ref(b); ref != 1 {
			panic(fmt.Sprintf("blocks: import into block %d with %d references", b, ref))
		}
		if _, hashed := c.pool.Hash(b); hashed {
			panic(fmt.Sprintf("blocks: import into hashed block %d", b))
		}
	}
	st := c.kv
	e, r := st.shape.elems(), 2*st.shape.rows()
	switch st.dtype {
	case FP32:
		for i := range st.f32[b*e : (b+1)*e] {
			st.f32[b*e+i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		src = src[4*e:]
	case FP16:
		for i := range st.f16[b*e : (b+1)*e] {
			st.f16[b*e+i] = binary.LittleEndian.Uint16(src[2*i:])
		}
		src = src[2*e:]
	case Int8:
		for i := range st.i8[b*e : (b+1)*e] {
			st.i8[b*e+i] = int8(src[i])
		}
		src = src[e:]
	case Int4:
		copy(st.i4[b*e/2:(b+1)*e/2], src[:e/2])
		src = src[e/2:]
	}
	if st.scale != nil {
		for i := range st.scale[b*r : (b+1)*r] {
			st.scale[b*r+i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	}
	return nil
}

// FreeCached appends to dst the blocks that are in the prefix cache and held by no table,
// coldest (next to be evicted) first, and returns the extended slice. They are what the
// disk tier moves out under memory pressure.
func (c *Cache) FreeCached(dst []int) []int {
	p := c.pool
	s := int32(len(p.ref)) // the free list's sentinel
	for b := p.link[s].next; b != s; b = p.link[b].next {
		if p.hashed[b] {
			dst = append(dst, int(b))
		}
	}
	return dst
}

// Uncache takes block b, free or live, out of the prefix cache (a Removed event), so that
// its hash no longer hits in memory; a free block becomes an ordinary free block.
func (c *Cache) Uncache(b int) {
	c.pool.Unhash(b)
	c.verify()
}
