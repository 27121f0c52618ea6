package blocks

import "fmt"

// storage is the K/V memory of all blocks, in one DType, allocated once.
//
// Memory is a sequence of tiles, one per (block, K or V, layer, head), each holding the
// blockSize tokens of that head: per block, the K tiles of every (layer, head), then the V
// tiles. A V tile is (blockSize, headSize), a token's values contiguous, because AccumV
// adds whole value vectors. A K tile is transposed, (headSize, blockSize): Scores runs
// over i in the outer loop and over the block's positions in the inner one, which keeps
// every position's dot product in index order (as run.c sums it) while the positions
// proceed side by side, in SIMD lanes where the CPU has them. A row is one token's head;
// each row of an Int8/Int4 block has its own scale.
//
// storage knows nothing of tables or reference counts; Cache guards it. Its methods only
// read the memory they are asked about, except put, copyBlock and import, so concurrent
// calls are safe as long as no call writes memory another call reads or writes.
type storage struct {
	shape Shape
	dtype DType
	tile  int               // elements per tile: blockSize·headSize
	half  *[1 << 16]float32 // FP16 decoding table (shared, read-only)

	f32   []float32 // FP32: (blocks, 2, layers, kvHeads, tile); K tiles (headSize, blockSize), V tiles (blockSize, headSize)
	f16   []uint16  // FP16: as f32, IEEE half bits
	i8    []int8    // Int8: as f32
	i4    []byte    // Int4: (blocks, 2, layers, kvHeads, tile/2): K tiles (headSize/2, blockSize), V tiles (blockSize, headSize/2); two elements per byte, see pairs
	scale []float32 // Int8, Int4: (blocks, 2, layers, kvHeads, blockSize), one per row
}

// newStorage allocates numBlocks blocks of shape s in type d; s and d are valid.
func newStorage(s Shape, d DType, numBlocks int) *storage {
	st := &storage{shape: s, dtype: d, tile: s.BlockSize * s.HeadSize}
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

// tileOf is the index of the tile (block, kv, layer, head), kv 0 for K and 1 for V. It
// panics on a layer or head out of range; a block out of range panics on the slices.
func (st *storage) tileOf(block, kv, layer, head int) int {
	s := &st.shape
	if uint(layer) >= uint(s.Layers) || uint(head) >= uint(s.KVHeads) {
		panic(fmt.Sprintf("blocks: layer %d, head %d outside shape %+v", layer, head, *s))
	}
	return ((block*2+kv)*s.Layers+layer)*s.KVHeads + head
}

// rowAt locates row (tile, slot): element i is at off + i·stride (for Int4, element pair
// m is at byte off + m·stride); r indexes its scale.
func (st *storage) rowAt(tile, kv, slot int) (off, stride, r int) {
	bs, hs := st.shape.BlockSize, st.shape.HeadSize
	if uint(slot) >= uint(bs) {
		panic(fmt.Sprintf("blocks: slot %d outside a block of %d", slot, bs))
	}
	r = tile*bs + slot
	base, width := tile*st.tile, hs // in elements
	if st.dtype == Int4 {
		base, width = tile*st.tile/2, hs/2 // in bytes, one element pair each
	}
	if kv == 0 {
		return base + slot, bs, r
	}
	return base + slot*width, 1, r
}

// span checks that n slots of a block exist.
func (st *storage) span(n int) {
	if uint(n) > uint(st.shape.BlockSize) {
		panic(fmt.Sprintf("blocks: %d slots in a block of %d", n, st.shape.BlockSize))
	}
}

// put stores one token's heads, x (kvHeads·headSize), in the rows (block, kv, layer, slot).
func (st *storage) put(block, kv, slot, layer int, x []float32) {
	hs := st.shape.HeadSize
	if len(x) != st.shape.KVHeads*hs {
		panic(fmt.Sprintf("blocks: write of %d values, want kvHeads·headSize = %d", len(x), st.shape.KVHeads*hs))
	}
	for h := range st.shape.KVHeads {
		off, stride, r := st.rowAt(st.tileOf(block, kv, layer, h), kv, slot)
		src := x[h*hs : (h+1)*hs]
		switch st.dtype {
		case FP32:
			for i, v := range src {
				st.f32[off+i*stride] = v
			}
		case FP16:
			for i, v := range src {
				st.f16[off+i*stride] = float32ToHalf(v)
			}
		case Int8:
			scale := scaleFor(src, 127)
			z := newQuantizer(scale, 127)
			for i, v := range src {
				st.i8[off+i*stride] = z.q(v)
			}
			st.scale[r] = scale
		case Int4:
			scale := scaleFor(src, 7)
			z := newQuantizer(scale, 7)
			a, b := pairs(kv, hs)
			for m := range hs / 2 {
				st.i4[off+m*stride] = byte(z.q(src[a*m]))&0x0f | byte(z.q(src[a*m+b]))<<4
			}
			st.scale[r] = scale
		}
	}
}

// pairs says which elements share byte m of an Int4 row: a·m in the low nibble and a·m+b
// in the high one. K rows pair neighbours (2m, 2m+1), which Scores adds one after the
// other; V rows pair halves (m, m+headSize/2), so AccumV's lanes hold consecutive
// elements of out without shuffling.
func pairs(kv, hs int) (a, b int) {
	if kv == 0 {
		return 2, 1
	}
	return 1, hs / 2
}

// get dequantizes the row (block, kv, layer, head, slot) into dst (headSize).
func (st *storage) get(dst []float32, block, kv, slot, layer, head int) {
	hs := st.shape.HeadSize
	dst = dst[:hs]
	off, stride, r := st.rowAt(st.tileOf(block, kv, layer, head), kv, slot)
	switch st.dtype {
	case FP32:
		for i := range dst {
			dst[i] = st.f32[off+i*stride]
		}
	case FP16:
		for i := range dst {
			dst[i] = st.half[st.f16[off+i*stride]]
		}
	case Int8:
		for i := range dst {
			dst[i] = float32(st.i8[off+i*stride]) * st.scale[r]
		}
	case Int4:
		a, b := pairs(kv, hs)
		for m := range hs / 2 {
			x := st.i4[off+m*stride]
			dst[a*m], dst[a*m+b] = lo4(x)*st.scale[r], hi4(x)*st.scale[r]
		}
	}
}

// scores sets out[j] = q · K[block, layer, head, j] for j < n.
func (st *storage) scores(out, q []float32, block, layer, head, n int) {
	st.span(n)
	hs, bs := st.shape.HeadSize, st.shape.BlockSize
	if len(q) != hs {
		panic(fmt.Sprintf("blocks: query of %d values, want headSize %d", len(q), hs))
	}
	out = out[:n]
	t := st.tileOf(block, 0, layer, head)
	switch st.dtype {
	case FP32:
		scoresF32(out, q, st.f32[t*st.tile:(t+1)*st.tile], bs)
	case FP16:
		scoresF16(st.half, out, q, st.f16[t*st.tile:(t+1)*st.tile], bs)
	case Int8:
		sumsI8(out, q, st.i8[t*st.tile:(t+1)*st.tile], bs)
		scaleScores(out, st.scale[t*bs:(t+1)*bs])
	case Int4:
		sumsI4(out, q, st.i4[t*st.tile/2:(t+1)*st.tile/2], bs)
		scaleScores(out, st.scale[t*bs:(t+1)*bs])
	}
}

// accumV does out += Σ_j w[j]·V[block, layer, head, j] for j < n, in order of j.
func (st *storage) accumV(out, w []float32, block, layer, head, n int) {
	st.span(n)
	hs, bs := st.shape.HeadSize, st.shape.BlockSize
	if len(out) != hs {
		panic(fmt.Sprintf("blocks: output of %d values, want headSize %d", len(out), hs))
	}
	w = w[:n]
	t := st.tileOf(block, 1, layer, head)
	switch st.dtype {
	case FP32:
		accumF32(out, w, st.f32[t*st.tile:t*st.tile+n*hs])
	case FP16:
		accumF16(st.half, out, w, st.f16[t*st.tile:t*st.tile+n*hs])
	case Int8:
		accumI8(out, w, st.i8[t*st.tile:t*st.tile+n*hs], st.scale[t*bs:t*bs+n])
	case Int4:
		accumI4(out, w, st.i4[t*st.tile/2:(t*st.tile+n*hs)/2], st.scale[t*bs:t*bs+n])
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
