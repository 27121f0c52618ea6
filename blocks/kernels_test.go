package blocks

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// rowValue is element i of a row decoded from storage the plain way, and the row's scale
// (1 for the float types).
func rowValue(st *storage, block, kv, layer, head, slot, i int) (x, scale float32) {
	hs := st.shape.HeadSize
	off, stride, r := st.rowAt(st.tileOf(block, kv, layer, head), kv, slot)
	switch st.dtype {
	case FP32:
		return st.f32[off+i*stride], 1
	case FP16:
		return halfToFloat32(st.f16[off+i*stride]), 1
	case Int8:
		return float32(st.i8[off+i*stride]), st.scale[r]
	}
	// K: elements 2m, 2m+1 in byte m; V: elements m, m+hs/2.
	m, high := i/2, i%2 == 1
	if kv == 1 {
		m, high = i%(hs/2), i >= hs/2
	}
	b := st.i4[off+m*stride]
	if !high {
		return float32(int8(b<<4) >> 4), st.scale[r]
	}
	return float32(int8(b) >> 4), st.scale[r]
}

// TestKernelsMatchOneRowAtATime: the kernels (over transposed K tiles, four V rows at a time) give bit for bit what one
// sequential sum per row gives (the integer types applying the row's scale once, after the
// sum for Scores, folded into the weight for AccumV), for every block fill n and several
// head sizes.
func TestKernelsMatchOneRowAtATime(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	paths := []bool{false}
	if useAVX2 {
		paths = append(paths, true)
	}
	defer func(v bool) { useAVX2 = v }(useAVX2)
	for _, avx2 := range paths {
		useAVX2 = avx2
		for _, d := range allDTypes {
			for _, bs := range []int{12, 16, 24} {
				for _, hs := range []int{2, 8, 10, 64, 66} {
					kernelsMatch(t, rng, fmt.Sprintf("avx2=%v/%v/bs%d/hs%d", avx2, d, bs, hs), d, bs, hs)
				}
			}
		}
	}
}

func kernelsMatch(t *testing.T, rng *rand.Rand, name string, d DType, bs, hs int) {
	t.Run(name, func(t *testing.T) {
		sh := Shape{Layers: 2, KVHeads: 3, HeadSize: hs, BlockSize: bs}
		c := newTestCache(t, Config{Shape: sh, DType: d, NumBlocks: 3})
		tb := &Table{}
		c.Append(tb, 3*bs)
		for pos := range tb.Len {
			b, s := tb.Slot(pos)
			for l := range sh.Layers {
				c.Write(b, s, l, randVec(rng, 3*hs, 1), randVec(rng, 3*hs, 1))
			}
		}
		block, layer, head := tb.Blocks[1], 1, 2
		q, w := randVec(rng, hs, 1), randVec(rng, bs, 1)
		for n := range bs + 1 {
			got := make([]float32, bs)
			c.Scores(got, q, block, layer, head, n)
			out := randVec(rng, hs, 1)
			want := append([]float32(nil), out...)
			c.AccumV(out, w, block, layer, head, n)
			for j := range n {
				var s, scale float32
				for i := range hs {
					x, sc := rowValue(c.kv, block, 0, layer, head, j, i)
					s += float32(q[i] * x)
					scale = sc
				}
				if d == Int8 || d == Int4 {
					s *= scale
				}
				if got[j] != s {
					t.Fatalf("n %d: score %d = %v, want %v", n, j, got[j], s)
				}
				for i := range hs {
					x, sc := rowValue(c.kv, block, 1, layer, head, j, i)
					wj := w[j]
					if d == Int8 || d == Int4 {
						wj *= sc
					}
					want[i] += float32(wj * x)
				}
			}
			for i := range out {
				if out[i] != want[i] {
					t.Fatalf("n %d: out[%d] = %v, want %v", n, i, out[i], want[i])
				}
			}
		}
		c.Release(tb)
	})
}
