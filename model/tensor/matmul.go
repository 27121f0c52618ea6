package tensor

import "fmt"

// Tile sizes of the blocked kernels: a tile keeps maxTileR x maxTileC accumulators
// (24 of the 32 ZMM registers) and reads maxTileR weight rows once per tile of tokens.
// Q8 tiles keep a second set of accumulators per group, so batched Q8 tiles take fewer
// weight rows (kernelSet.q8R).
//
// maxTokenChunk bounds the tokens one pass over the weight rows serves: 48 tokens of
// activations are 144 KB at width 768 and 384 KB at 2048, which stay in L2.
const (
	maxTileR      = 4
	maxTileC      = 6
	maxQ8TileC    = 6
	maxTokenChunk = 48
)

// tokenSplit cuts t tokens into the fewest tiles of at most maxC, spread evenly: 32
// tokens in tiles of at most 6 become 6, 6, 5, 5, 5, 5.
type tokenSplit struct{ base, extra int }

func splitTokens(t, maxC int) tokenSplit {
	n := (t + maxC - 1) / maxC
	return tokenSplit{base: t / n, extra: t % n}
}

// width returns the number of tokens in tile i.
func (s tokenSplit) width(i int) int {
	if i < s.extra {
		return s.base + 1
	}
	return s.base
}

// MatMulRef is the readable single-threaded oracle of MatMul: one sequential fp32 dot
// product per output element, Q8 weights accumulated per group then scaled.
// out (t, w.Rows) = x (t, w.Cols) · wᵀ.
func MatMulRef(out, x []float32, w Matrix, t int) {
	checkMatMul(out, x, w, t)
	n, k := w.Rows, w.Cols
	for r := 0; r < t; r++ {
		xr := x[r*k : (r+1)*k]
		for i := 0; i < n; i++ {
			var s float32
			if w.GroupSize == 0 {
				wr := w.F32[i*k : (i+1)*k]
				for j := range xr {
					s += float32(xr[j] * wr[j])
				}
			} else {
				gs := w.GroupSize
				for g := 0; g < k; g += gs {
					var gsum float32
					for j := g; j < g+gs; j++ {
						gsum += float32(xr[j] * float32(w.Q8[i*k+j]))
					}
					s += float32(gsum * w.Scales[(i*k+g)/gs])
				}
			}
			out[r*n+i] = s
		}
	}
}

// checkMatMul panics unless the buffers of MatMul(out, x, w, t) have consistent shapes.
func checkMatMul(out, x []float32, w Matrix, t int) {
	if t < 0 || len(x) < t*w.Cols || len(out) < t*w.Rows {
		panic(fmt.Sprintf("tensor: MatMul t=%d of (%d, %d) with len(x)=%d len(out)=%d",
			t, w.Rows, w.Cols, len(x), len(out)))
	}
	if err := w.check(); err != nil {
		panic(err.Error())
	}
}

// check reports an inconsistent Matrix.
func (m Matrix) check() error {
	switch {
	case m.Rows < 0 || m.Cols < 0:
		return fmt.Errorf("tensor: matrix shape (%d, %d)", m.Rows, m.Cols)
	case m.GroupSize == 0:
		if len(m.F32) < m.Rows*m.Cols {
			return fmt.Errorf("tensor: fp32 matrix (%d, %d) has %d values", m.Rows, m.Cols, len(m.F32))
		}
	case m.GroupSize < 0 || m.Cols%m.GroupSize != 0:
		return fmt.Errorf("tensor: q8 matrix (%d, %d) with group size %d (must divide Cols)",
			m.Rows, m.Cols, m.GroupSize)
	case len(m.Q8) < m.Rows*m.Cols || len(m.Scales) < m.Rows*m.Cols/m.GroupSize:
		return fmt.Errorf("tensor: q8 matrix (%d, %d) has %d values and %d scales",
			m.Rows, m.Cols, len(m.Q8), len(m.Scales))
	}
	return nil
}

// matmulRange computes output rows [lo, hi) (weight rows) for all t tokens.
func matmulRange(out, x []float32, w Matrix, t, lo, hi int) {
	if lo >= hi || t == 0 {
		return
	}
	if w.Cols == 0 {
		for r := 0; r < t; r++ {
			clear(out[r*w.Rows+lo : r*w.Rows+hi])
		}
		return
	}
	if w.GroupSize > 0 {
		matmulQ8Tiles(out, x, w, t, lo, hi)
		return
	}
	matmulTiles(out, x, w, t, lo, hi)
}

// matmulRowsGo is the portable fp32 kernel: each weight row is read once and dotted with
// every token while it is in L1.
func matmulRowsGo(out, x []float32, w Matrix, t, lo, hi int) {
	n, k := w.Rows, w.Cols
	for i := lo; i < hi; i++ {
		wr := w.F32[i*k : (i+1)*k]
		for r := 0; r < t; r++ {
			out[r*n+i] = dotGo(x[r*k:(r+1)*k], wr)
		}
	}
}

// matmulQ8Range is the portable Q8 kernel: per group, the fp32 activations times the int8
// weights are summed, then scaled and added to the row's sum.
func matmulQ8Range(out, x []float32, w Matrix, t, lo, hi int) {
	n, k, gs := w.Rows, w.Cols, w.GroupSize
	for i := lo; i < hi; i++ {
		wr := w.Q8[i*k : (i+1)*k]
		sc := w.Scales[i*k/gs : (i+1)*k/gs]
		for r := 0; r < t; r++ {
			xr := x[r*k : (r+1)*k]
			var s float32
			for g := range sc {
				xg, wg := xr[g*gs:(g+1)*gs], wr[g*gs:(g+1)*gs]
				var s0, s1, s2, s3 float32
				j := 0
				for ; j+4 <= gs; j += 4 {
					s0 += float32(xg[j] * float32(wg[j]))
					s1 += float32(xg[j+1] * float32(wg[j+1]))
					s2 += float32(xg[j+2] * float32(wg[j+2]))
					s3 += float32(xg[j+3] * float32(wg[j+3]))
				}
				for ; j < gs; j++ {
					s0 += float32(xg[j] * float32(wg[j]))
				}
				s += float32(((s0 + s1) + (s2 + s3)) * sc[g])
			}
			out[r*n+i] = s
		}
	}
}
