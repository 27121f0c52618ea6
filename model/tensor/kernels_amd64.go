//go:build !purego

package tensor

import "golang.org/x/sys/cpu"

//go:generate go run gen_asm.go

// hasAVX512 selects the assembly kernels; tests switch it off to run the pure-Go ones.
var hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL

// tileFunc computes an R x C tile: out[j*ldo+i] = Σ_{l<k} w[i*ldw+l]·x[j*ldx+l] for i < R,
// j < C. Leading dimensions are in elements.
type tileFunc func(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

// f32Tiles[R][C] is the AVX-512 kernel for an R x C tile.
var f32Tiles = [maxTileR + 1][maxTileC + 1]tileFunc{
	1: {1: tileF32R1C1, 2: tileF32R1C2, 3: tileF32R1C3, 4: tileF32R1C4, 5: tileF32R1C5, 6: tileF32R1C6},
	2: {1: tileF32R2C1, 2: tileF32R2C2, 3: tileF32R2C3, 4: tileF32R2C4, 5: tileF32R2C5, 6: tileF32R2C6},
	3: {1: tileF32R3C1, 2: tileF32R3C2, 3: tileF32R3C3, 4: tileF32R3C4, 5: tileF32R3C5, 6: tileF32R3C6},
	4: {1: tileF32R4C1, 2: tileF32R4C2, 3: tileF32R4C3, 4: tileF32R4C4, 5: tileF32R4C5, 6: tileF32R4C6},
}

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
	ntiles := (t + maxTileC - 1) / maxTileC
	for i := lo; i < hi; i += maxTileR {
		r := min(maxTileR, hi-i)
		wp := &w.F32[i*k]
		for j, tile := 0, 0; j < t; tile++ {
			// Spread t tokens evenly over ntiles tiles of at most maxTileC.
			c := (t - j + (ntiles - tile) - 1) / (ntiles - tile)
			f32Tiles[r][c](wp, k, &x[j*k], k, k, &out[j*n+i], n)
			j += c
		}
	}
}
