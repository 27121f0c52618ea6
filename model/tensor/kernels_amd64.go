//go:build !purego

package tensor

import "golang.org/x/sys/cpu"

//go:generate go run gen_asm.go

// tileFunc computes an R x C tile: out[j*ldo+i] = Σ_{l<k} w[i*ldw+l]·x[j*ldx+l] for i < R,
// j < C. Leading dimensions are in elements.
type tileFunc func(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

// tileQ8Func is tileFunc for int8 weights in groups of gs (a multiple of the lane count)
// with one scale per group:
// out[j*ldo+i] = Σ_{g<groups} s[i*lds+g]·Σ_{l in g} w[i*ldw+l]·x[j*ldx+l].
type tileQ8Func func(w *int8, ldw int, x *float32, ldx int, groups int, gs int, out *float32, ldo int, s *float32, lds int)

// kernelSet is the generated assembly for one instruction set (tiles_amd64.go).
type kernelSet struct {
	name               string
	lanes              int // float32 lanes per vector; Q8 groups must be a multiple
	maxR, maxC, maxQ8C int // tile limits: weight rows, tokens (fp32), tokens (Q8)
	q8R                int // weight rows of a Q8 tile of more than one token
	axpy               func(alpha float32, x *float32, y *float32, n int)
	f32                [maxTileR + 1][maxTileC + 1]tileFunc
	q8                 [maxTileR + 1][maxQ8TileC + 1]tileQ8Func
}

// kernels is the best set the CPU runs, or nil for the portable Go kernels; tests switch
// it to run every set.
var kernels = detectKernels()

func detectKernels() *kernelSet {
	if ks := availableKernels(); len(ks) > 0 {
		return ks[0]
	}
	return nil
}

// availableKernels lists the sets this CPU (and OS) runs, best first. The AVX-512 kernels
// use ZMM, and X/Y registers above 15, so they need AVX-512F and VL.
func availableKernels() []*kernelSet {
	var ks []*kernelSet
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL {
		ks = append(ks, &kernelsAVX512)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, &kernelsAVX2)
	}
	return ks
}

func dot(a, b []float32) float32 {
	ks := kernels
	if ks == nil || len(a) == 0 {
		return dotGo(a, b)
	}
	// Direct calls: through the func value the result variable would escape.
	var s float32
	if ks == &kernelsAVX512 {
		dotAVX512(&a[0], 0, &b[0], 0, len(a), &s, 0)
	} else {
		dotAVX2(&a[0], 0, &b[0], 0, len(a), &s, 0)
	}
	return s
}

func axpy(alpha float32, x, y []float32) {
	ks := kernels
	if ks == nil || len(x) == 0 {
		axpyGo(alpha, x, y)
		return
	}
	ks.axpy(alpha, &x[0], &y[0], len(x))
}

// matmulTiles computes rows [lo, hi) of out for all t tokens with register-blocked tiles:
// each block of maxR weight rows is read from memory once and then reused from L1 for
// every tile of tokens.
func matmulTiles(out, x []float32, w Matrix, t, lo, hi int) {
	ks := kernels
	if ks == nil {
		matmulRowsGo(out, x, w, t, lo, hi)
		return
	}
	k, n := w.Cols, w.Rows
	if t <= ks.maxC { // one tile of tokens: the common decode step of a few sequences
		for i := lo; i < hi; i += ks.maxR {
			r := min(ks.maxR, hi-i)
			ks.f32[r][t](&w.F32[i*k], k, &x[0], k, k, &out[i], n)
		}
		return
	}
	// Long batches (prefill) go in chunks of tokens whose activations stay in L2 while
	// the weight rows stream past; each chunk reads the rows once more.
	for j0 := 0; j0 < t; j0 += maxTokenChunk {
		tc := min(maxTokenChunk, t-j0)
		tt := splitTokens(tc, ks.maxC)
		for i := lo; i < hi; i += ks.maxR {
			r := min(ks.maxR, hi-i)
			wp := &w.F32[i*k]
			for tile, j := 0, j0; j < j0+tc; tile++ {
				c := tt.width(tile)
				ks.f32[r][c](wp, k, &x[j*k], k, k, &out[j*n+i], n)
				j += c
			}
		}
	}
}

// matmulQ8Tiles is matmulTiles for Q8 weights whose group size is a multiple of the
// vector width.
func matmulQ8Tiles(out, x []float32, w Matrix, t, lo, hi int) {
	ks := kernels
	gs := w.GroupSize
	if ks == nil || gs%ks.lanes != 0 {
		matmulQ8Range(out, x, w, t, lo, hi)
		return
	}
	k, n := w.Cols, w.Rows
	groups := k / gs
	rows := ks.maxR
	if t > 1 {
		rows = ks.q8R
	}
	for j0 := 0; j0 < t; j0 += maxTokenChunk {
		tc := min(maxTokenChunk, t-j0)
		tt := splitTokens(tc, ks.maxQ8C)
		for i := lo; i < hi; i += rows {
			r := min(rows, hi-i)
			wp, sp := &w.Q8[i*k], &w.Scales[i*groups]
			for tile, j := 0, j0; j < j0+tc; tile++ {
				c := tt.width(tile)
				ks.q8[r][c](wp, k, &x[j*k], k, groups, gs, &out[j*n+i], n, sp, groups)
				j += c
			}
		}
	}
}
