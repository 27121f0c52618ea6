package blocks

import "fmt"

// storage is the K/V memory of all blocks, in one DType, allocated once. Per block it holds
// K then V, each (layers, kvHeads, blockSize, headSize), so the blockSize rows of one
// (layer, head) are contiguous for Scores and AccumV. A row is one token's head.
//
// storage knows nothing of tables or reference counts; Cache guards it. Its methods only
// read the memory they are asked about, except Write and Copy, so concurrent calls are safe
// as long as no call writes a row another call reads or writes (see the package doc).
type storage struct {
	shape Shape
	dtype DType
	half  *[1 << 16]float32 // FP16 decoding table (shared, read-only)

	f32   []float32 // FP32: (blocks, 2, layers, kvHeads, blockSize, headSize); K at index 0 of the 2, V at 1
	f16   []uint16  // FP16: same shape as f32, IEEE half bits
	i8    []int8    // Int8: same shape as f32
	i4    []byte    // Int4: (blocks, 2, layers, kvHeads, blockSize, headSize/2), element 2i in the low nibble
	scale []float32 // Int8, Int4: (blocks, 2, layers, kvHeads, blockSize), one per row
}

// newStorage allocates numBlocks blocks of shape s in type d; s and d are valid.
func newStorage(s Shape, d DType, numBlocks int) *storage {
	st := &storage{shape: s, dtype: d}
	n := numBlocks * s.elems()
	switch d {
	case FP32:
		st.f32 = make([]float32, n)
	case FP16:
		loadHalfTable()
		st.half = halfTable
		st.f16 = make([]uint16, n)
	case Int8:
		st.i8 = make([]int8, n)
		st.scale = make([]float32, 2*numBlocks*s.rows())
	case Int4:
		st.i4 = make([]byte, n/2)
		st.scale = make([]float32, 2*numBlocks*s.rows())
	}
	return st
}

// row is the index of the row (block, kv, layer, head, slot), kv 0 for K and 1 for V. It
// panics on a layer, head or slot out of range; a block out of range panics on the slice.
func (st *storage) row(block, kv, layer, head, slot int) int {
	s := &st.shape
	if uint(layer) >= uint(s.Layers) || uint(head) >= uint(s.KVHeads) || uint(slot) >= uint(s.BlockSize) {
		panic(fmt.Sprintf("blocks: layer %d, head %d, slot %d outside shape %+v", layer, head, slot, *s))
	}
	return (((block*2+kv)*s.Layers+layer)*s.KVHeads+head)*s.BlockSize + slot
}

// span checks that n slots of a block exist.
func (st *storage) span(n int) {
	if uint(n) > uint(st.shape.BlockSize) {
		panic(fmt.Sprintf("blocks: %d slots in a block of %d", n, st.shape.BlockSize))
	}
}

// put stores one token's heads, x (kvHeads·headSize), at the rows of (block, kv, layer, slot).
func (st *storage) put(block, kv, slot, layer int, x []float32) {
	hs := st.shape.HeadSize
	if len(x) != st.shape.KVHeads*hs {
		panic(fmt.Sprintf("blocks: write of %d values, want kvHeads·headSize = %d", len(x), st.shape.KVHeads*hs))
	}
	for h := range st.shape.KVHeads {
		r := st.row(block, kv, layer, h, slot)
		src := x[h*hs : (h+1)*hs]
		switch st.dtype {
		case FP32:
			copy(st.f32[r*hs:(r+1)*hs], src)
		case FP16:
			putF16(st.f16[r*hs:(r+1)*hs], src)
		case Int8:
			st.scale[r] = putI8(st.i8[r*hs:(r+1)*hs], src)
		case Int4:
			st.scale[r] = putI4(st.i4[r*hs/2:(r+1)*hs/2], src)
		}
	}
}

// get dequantizes the row (block, kv, layer, head, slot) into dst (headSize).
func (st *storage) get(dst []float32, block, kv, slot, layer, head int) {
	hs := st.shape.HeadSize
	dst = dst[:hs]
	r := st.row(block, kv, layer, head, slot)
	switch st.dtype {
	case FP32:
		copy(dst, st.f32[r*hs:(r+1)*hs])
	case FP16:
		for i, h := range st.f16[r*hs : (r+1)*hs] {
			dst[i] = st.half[h]
		}
	case Int8:
		clear(dst)
		axpyI8(dst, st.scale[r], st.i8[r*hs:(r+1)*hs])
	case Int4:
		clear(dst)
		axpyI4(dst, st.scale[r], st.i4[r*hs/2:(r+1)*hs/2])
	}
}

// scores sets out[j] = q · K[block, layer, head, j] for j < n.
func (st *storage) scores(out, q []float32, block, layer, head, n int) {
	st.span(n)
	hs := st.shape.HeadSize
	if len(q) != hs {
		panic(fmt.Sprintf("blocks: query of %d values, want headSize %d", len(q), hs))
	}
	out = out[:n]
	r := st.row(block, 0, layer, head, 0)
	switch st.dtype {
	case FP32:
		scoresF32(out, q, st.f32[r*hs:(r+n)*hs])
	case FP16:
		scoresF16(st.half, out, q, st.f16[r*hs:(r+n)*hs])
	case Int8:
		scoresI8(out, q, st.i8[r*hs:(r+n)*hs], st.scale[r:r+n])
	case Int4:
		scoresI4(out, q, st.i4[r*hs/2:(r+n)*hs/2], st.scale[r:r+n])
	}
}

// accumV does out += Σ_j w[j]·V[block, layer, head, j] for j < n, in order of j.
func (st *storage) accumV(out, w []float32, block, layer, head, n int) {
	st.span(n)
	hs := st.shape.HeadSize
	if len(out) != hs {
		panic(fmt.Sprintf("blocks: output of %d values, want headSize %d", len(out), hs))
	}
	w = w[:n]
	r := st.row(block, 1, layer, head, 0)
	switch st.dtype {
	case FP32:
		accumF32(out, w, st.f32[r*hs:(r+n)*hs])
	case FP16:
		accumF16(st.half, out, w, st.f16[r*hs:(r+n)*hs])
	case Int8:
		accumI8(out, w, st.i8[r*hs:(r+n)*hs], st.scale[r:r+n])
	case Int4:
		accumI4(out, w, st.i4[r*hs/2:(r+n)*hs/2], st.scale[r:r+n])
	}
}

// copyBlock copies block src's K and V (and scales) over block dst.
func (st *storage) copyBlock(dst, src int) {
	e, r := st.shape.elems(), 2*st.shape.rows()
	switch st.dtype {
	case FP32:
		copy(st.f32[dst*e:(dst+1)*e], st.f32[src*e:(src+1)*e])
	case FP16:
		copy(st.f16[dst*e:(dst+1)*e], st.f16[src*e:(src+1)*e])
	case Int8:
		copy(st.i8[dst*e:(dst+1)*e], st.i8[src*e:(src+1)*e])
	case Int4:
		copy(st.i4[dst*e/2:(dst+1)*e/2], st.i4[src*e/2:(src+1)*e/2])
	}
	if st.scale != nil {
		copy(st.scale[dst*r:(dst+1)*r], st.scale[src*r:(src+1)*r])
	}
}
