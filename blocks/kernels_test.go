package blocks

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// rowValue is element i of row r decoded from storage the plain way, and the row's scale
// (1 for the float types).
func rowValue(st *storage, r, i int) (x, scale float32) {
	hs := st.shape.HeadSize
	switch st.dtype {
	case FP32:
		return st.f32[r*hs+i], 1
	case FP16:
		return halfToFloat32(st.f16[r*hs+i]), 1
	case Int8:
		return float32(st.i8[r*hs+i]), st.scale[r]
	}
	b := st.i4[(r*hs+i)/2]
	if i%2 == 0 {
		return float32(int8(b<<4) >> 4), st.scale[r]
	}
	return float32(int8(b) >> 4), st.scale[r]
}

// TestKernelsMatchOneRowAtATime: the four-rows-at-a-time kernels give bit for bit what one
// sequential sum per row gives (the integer types applying the row's scale once, after the
// sum for Scores, folded into the weight for AccumV), for every block fill n and several
// head sizes.
func TestKernelsMatchOneRowAtATime(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, d := range allDTypes {
		for _, hs := range []int{2, 8, 10, 64, 66} {
			t.Run(fmt.Sprintf("%v/hs%d", d, hs), func(t *testing.T) {
				sh := Shape{Layers: 2, KVHeads: 3, HeadSize: hs, BlockSize: 16}
				c := newTestCache(t, Config{Shape: sh, DType: d, NumBlocks: 3})
				tb := &Table{}
				c.Append(tb, 3*16)
				for pos := range tb.Len {
					b, s := tb.Slot(pos)
					for l := range sh.Layers {
						c.Write(b, s, l, randVec(rng, 3*hs, 1), randVec(rng, 3*hs, 1))
					}
				}
				block, layer, head := tb.Blocks[1], 1, 2
				q, w := randVec(rng, hs, 1), randVec(rng, 16, 1)
				for n := range 17 {
					got := make([]float32, 16)
					c.Scores(got, q, block, layer, head, n)
					out := randVec(rng, hs, 1)
					want := append([]float32(nil), out...)
					c.AccumV(out, w, block, layer, head, n)
					for j := range n {
						kr := c.kv.row(block, 0, layer, head, j)
						var s, scale float32
						for i := range hs {
							x, sc := rowValue(c.kv, kr, i)
							s += float32(q[i] * x)
							scale = sc
						}
						if d == Int8 || d == Int4 {
							s *= scale
						}
						if got[j] != s {
							t.Fatalf("n %d: score %d = %v, want %v", n, j, got[j], s)
						}
						vr := c.kv.row(block, 1, layer, head, j)
						for i := range hs {
							x, sc := rowValue(c.kv, vr, i)
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
	}
}
