//go:build !purego

package tensor

import "golang.org/x/sys/cpu"

//go:generate go run gen_asm.go

// hasAVX512 selects the assembly kernels; tests switch it off to run the pure-Go ones.
var hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL

// tileFunc computes an R x C tile: out[j*ldo+i] = Σ_{l<k} w[i*ldw+l]·x[j*ldx+l] for i < R,
// j < C. Leading dimensions are in elements.
type tileFunc func(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

// tileQ8Func is tileFunc for int8 weights in groups of gs (a multiple of 16) with one
// scale per group: out[j*ldo+i] = Σ_{g<groups} s[i*lds+g]·Σ_{l in g} w[i*ldw+l]·x[j*ldx+l].
type tileQ8Func func(w *int8, ldw int, x *float32, ldx int, groups int, gs int, out *float32, ldo int, s *float32, lds int)

func dot(a, b []float32) float32 {
	if !hasAVX512 || len(a) == 0 {
		return dotGo(a, b)
	}
	var s float32
	tileF32R1C1(&a[0], 0, &b[0], 0, len(a), &s, 0)
	return s
}

func axpy(alpha float32, x, y []float32) {
	if !hasAVX512 || len(x) == 0 {
		axpyGo(alpha, x, y)
		return
	}
	axpyAVX512(alpha, &x[0], &y[0], len(x))
}

// matmulTiles computes rows [lo, hi) of out for all t tokens with register-blocked tiles:
// each block of maxTileR weight rows is read from memory once and then reused from L1
// for every tile of tokens.
func matmulTiles(out, x []float32, w Matrix, t, lo, hi int) {
	if !hasAVX512 {
		matmulRowsGo(out, x, w, t, lo, hi)
		return
	}
	k, n := w.Cols, w.Rows
	for i := lo; i < hi; i += maxTileR {
		r := min(maxTileR, hi-i)
		wp := &w.F32[i*k]
		for j, c := range tokenTiles(t, maxTileC) {
			f32Tiles[r][c](wp, k, &x[j*k], k, k, &out[j*n+i], n)
		}
	}
}

// matmulQ8Tiles is matmulTiles for Q8 weights whose group size is a multiple of 16.
func matmulQ8Tiles(out, x []float32, w Matrix, t, lo, hi int) {
	gs := w.GroupSize
	if !hasAVX512 || gs%16 != 0 {
		matmulQ8Range(out, x, w, t, lo, hi)
		return
	}
	k, n := w.Cols, w.Rows
	groups := k / gs
	for i := lo; i < hi; i += maxTileR {
		r := min(maxTileR, hi-i)
		wp, sp := &w.Q8[i*k], &w.Scales[i*groups]
		for j, c := range tokenTiles(t, maxQ8TileC) {
			q8Tiles[r][c](wp, k, &x[j*k], k, groups, gs, &out[j*n+i], n, sp, groups)
		}
	}
}
