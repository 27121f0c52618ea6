package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randVec returns n values uniform in [-1, 1) from a deterministic source.
func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*rng.Float32() - 1
	}
	return v
}

func randMatrix(rng *rand.Rand, rows, cols int) Matrix {
	return Matrix{Rows: rows, Cols: cols, F32: randVec(rng, rows*cols)}
}

// kernelModes runs f with every kernel set the CPU has and with the portable Go kernels.
func kernelModes(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, ks := range append(availableKernels(), nil) {
		t.Run(kernelName(ks), func(t *testing.T) {
			old := kernels
			kernels = ks
			t.Cleanup(func() { kernels = old })
			f(t)
		})
	}
}

func kernelName(ks *kernelSet) string {
	if ks == nil {
		return "go"
	}
	return ks.name
}

// closeTo reports whether got is within a relative 1e-5 of the scale of the sum that
// produced want (absSum = Σ|terms|), which bounds fp32 reordering error.
func closeTo(got, want, absSum float32) bool {
	return math.Abs(float64(got-want)) <= 1e-5*float64(absSum)+1e-30
}

// absDots returns Σ_j |x[r,j]·w[i,j]| for every output element, using dequantized rows.
func absDots(x []float32, w Matrix, t int) []float32 {
	out := make([]float32, t*w.Rows)
	row := make([]float32, w.Cols)
	for i := 0; i < w.Rows; i++ {
		w.RowTo(row, i)
		for r := 0; r < t; r++ {
			var s float32
			for j, v := range row {
				s += float32(math.Abs(float64(v * x[r*w.Cols+j])))
			}
			out[r*w.Rows+i] = s
		}
	}
	return out
}

var matmulShapes = []struct{ rows, cols int }{
	{1, 1}, {1, 7}, {3, 16}, {5, 33}, {7, 172}, {172, 64}, {64, 172}, {9, 64}, {13, 300},
	{130, 768}, {512, 64},
}

var matmulTokens = []int{1, 2, 3, 5, 6, 7, 12, 13, 32, 64}

// splitAlways makes MatMul split every call over the pool's threads.
func splitAlways(t *testing.T) {
	old := minSplitFlops
	minSplitFlops = 0
	t.Cleanup(func() { minSplitFlops = old })
}

func TestMatMulMatchesRef(t *testing.T) {
	splitAlways(t)
	kernelModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, threads := range []int{1, 2, 3} {
			p := NewPool(threads)
			defer p.Close()
			for _, sh := range matmulShapes {
				w := randMatrix(rng, sh.rows, sh.cols)
				for _, tok := range matmulTokens {
					x := randVec(rng, tok*sh.cols)
					want := make([]float32, tok*sh.rows)
					MatMulRef(want, x, w, tok)
					got := make([]float32, tok*sh.rows)
					p.MatMul(got, x, w, tok)
					abs := absDots(x, w, tok)
					for i := range want {
						if !closeTo(got[i], want[i], abs[i]) {
							t.Fatalf("threads %d shape %v t %d: out[%d] = %g, want %g",
								threads, sh, tok, i, got[i], want[i])
						}
					}
				}
			}
		}
	})
}

// TestMatMulQ8 checks Q8 weights against the same weights dequantized and multiplied
// in fp32.
func TestMatMulQ8(t *testing.T) {
	splitAlways(t)
	kernelModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		shapes := []struct{ rows, cols, gs int }{
			{1, 16, 16}, {5, 32, 16}, {7, 64, 64}, {172, 64, 32}, {64, 192, 64}, {33, 768, 64},
			{3, 12, 4}, {6, 10, 5}, {9, 24, 8},
		}
		for _, threads := range []int{1, 2} {
			p := NewPool(threads)
			defer p.Close()
			for _, sh := range shapes {
				src := randVec(rng, sh.rows*sh.cols)
				q := QuantizeQ8(src, sh.rows, sh.cols, sh.gs)
				deq := Matrix{Rows: sh.rows, Cols: sh.cols, F32: make([]float32, sh.rows*sh.cols)}
				for i := 0; i < sh.rows; i++ {
					q.RowTo(deq.F32[i*sh.cols:(i+1)*sh.cols], i)
				}
				for _, tok := range []int{1, 4, 7, 32} {
					x := randVec(rng, tok*sh.cols)
					want := make([]float32, tok*sh.rows)
					MatMulRef(want, x, deq, tok)
					ref := make([]float32, tok*sh.rows)
					MatMulRef(ref, x, q, tok)
					got := make([]float32, tok*sh.rows)
					p.MatMul(got, x, q, tok)
					abs := absDots(x, q, tok)
					for i := range want {
						if !closeTo(got[i], want[i], abs[i]) || !closeTo(ref[i], want[i], abs[i]) {
							t.Fatalf("threads %d shape %v t %d: out[%d] = %g (ref %g), want %g",
								threads, sh, tok, i, got[i], ref[i], want[i])
						}
					}
				}
			}
		}
	})
}

func TestQuantizeQ8RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	src := randVec(rng, 4*64)
	src[7] = 0.9 // keep one group's max away from the others
	q := QuantizeQ8(src, 4, 64, 32)
	row := make([]float32, 64)
	for i := 0; i < 4; i++ {
		q.RowTo(row, i)
		for j, v := range row {
			s := q.Scales[(i*64+j)/32]
			if d := math.Abs(float64(v - src[i*64+j])); d > float64(s)/2*1.0001 {
				t.Fatalf("row %d col %d: %g vs %g (scale %g)", i, j, v, src[i*64+j], s)
			}
		}
	}
	zero := QuantizeQ8(make([]float32, 16), 1, 16, 16)
	if zero.Scales[0] != 0 || zero.Q8[3] != 0 {
		t.Fatalf("all-zero group quantized to scale %g, q %d", zero.Scales[0], zero.Q8[3])
	}
}

func TestDotAxpy(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, n := range []int{0, 1, 7, 15, 16, 17, 33, 63, 64, 65, 172, 255, 256, 1000} {
			a, b := randVec(rng, n), randVec(rng, n)
			var want, abs float32
			for i := range a {
				want += a[i] * b[i]
				abs += float32(math.Abs(float64(a[i] * b[i])))
			}
			if got := Dot(a, b); !closeTo(got, want, abs) {
				t.Fatalf("Dot n=%d: %g, want %g", n, got, want)
			}
			y := randVec(rng, n+1) // the extra element must stay untouched
			yw := append([]float32(nil), y...)
			for i := range a {
				yw[i] += 0.37 * a[i]
			}
			Axpy(0.37, a, y[:n])
			for i := range y {
				if !closeTo(y[i], yw[i], 2) {
					t.Fatalf("Axpy n=%d: y[%d] = %g, want %g", n, i, y[i], yw[i])
				}
			}
		}
	})
}

// The llama2.c formulas, transcribed from run.c with float32 arithmetic.
func rmsnormC(o, x, weight []float32) {
	size := len(x)
	var ss float32
	for j := 0; j < size; j++ {
		ss += float32(x[j] * x[j])
	}
	ss /= float32(size)
	ss += 1e-5
	ss = 1.0 / float32(math.Sqrt(float64(ss)))
	for j := 0; j < size; j++ {
		o[j] = weight[j] * float32(ss*x[j])
	}
}

func softmaxC(x []float32) {
	maxVal := x[0]
	for i := 1; i < len(x); i++ {
		if x[i] > maxVal {
			maxVal = x[i]
		}
	}
	var sum float32
	for i := range x {
		x[i] = float32(math.Exp(float64(x[i] - maxVal)))
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}

func TestRMSNormSoftmaxSiLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{1, 7, 64, 172, 768} {
		x, w := randVec(rng, n), randVec(rng, n)
		want, got := make([]float32, n), make([]float32, n)
		rmsnormC(want, x, w)
		RMSNorm(got, x, w)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("RMSNorm n=%d: out[%d] = %g, want %g", n, i, got[i], want[i])
			}
		}
		RMSNorm(x, x, w) // in place
		for i := range want {
			if x[i] != want[i] {
				t.Fatalf("RMSNorm in place n=%d: out[%d] = %g, want %g", n, i, x[i], want[i])
			}
		}
		s := randVec(rng, n)
		for i := range s {
			s[i] *= 20
		}
		sw := append([]float32(nil), s...)
		softmaxC(sw)
		Softmax(s)
		for i := range s {
			if s[i] != sw[i] {
				t.Fatalf("Softmax n=%d: [%d] = %g, want %g", n, i, s[i], sw[i])
			}
		}
	}
	for _, v := range []float32{-20, -1, 0, 0.5, 3, 40} {
		want := v * float32(1.0/(1.0+math.Exp(float64(-v))))
		if got := SiLU(v); math.Abs(float64(got-want)) > 1e-6*math.Abs(float64(want)) {
			t.Fatalf("SiLU(%g) = %g, want %g", v, got, want)
		}
	}
}

func TestPoolFor(t *testing.T) {
	for _, threads := range []int{0, 1, 2, 5} {
		p := NewPool(threads)
		for _, n := range []int{0, 1, 2, 3, 12, 101} {
			seen := make([]int, n)
			p.For(n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					seen[i]++
				}
			})
			for i, c := range seen {
				if c != 1 {
					t.Fatalf("threads %d n %d: index %d visited %d times", threads, n, i, c)
				}
			}
		}
		p.Close()
	}
}

func TestZeroAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	w := randMatrix(rng, 256, 256)
	q := QuantizeQ8(w.F32, 256, 256, 64)
	x := randVec(rng, 8*256)
	out := make([]float32, 8*256)
	p := NewPool(2)
	defer p.Close()
	fn := func(lo, hi int) { out[lo] = float32(hi) }
	checks := []struct {
		name string
		f    func()
	}{
		{"MatMul t=1", func() { p.MatMul(out, x, w, 1) }},
		{"MatMul t=8", func() { p.MatMul(out, x, w, 8) }},
		{"MatMul q8", func() { p.MatMul(out, x, q, 8) }},
		{"For", func() { p.For(100, fn) }},
		{"Dot", func() { out[0] = Dot(x[:256], w.F32[:256]) }},
		{"Axpy", func() { Axpy(0.5, x[:256], out[:256]) }},
	}
	for _, c := range checks {
		if a := testing.AllocsPerRun(50, c.f); a != 0 {
			t.Errorf("%s: %v allocations per call", c.name, a)
		}
	}
}

func TestMatMulPanicsOnShape(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for short out")
		}
	}()
	w := Matrix{Rows: 4, Cols: 4, F32: make([]float32, 16)}
	MatMulRef(make([]float32, 3), make([]float32, 4), w, 1)
}

// TestPoolConcurrentCallers has several goroutines share one Pool; their calls must
// serialise without mixing results, and a closed Pool keeps working inline.
func TestPoolConcurrentCallers(t *testing.T) {
	splitAlways(t)
	rng := rand.New(rand.NewPCG(13, 14))
	w := randMatrix(rng, 96, 80)
	p := NewPool(2)
	const callers = 4
	xs := make([][]float32, callers)
	wants := make([][]float32, callers)
	for c := range xs {
		xs[c] = randVec(rng, 5*80)
		wants[c] = make([]float32, 5*96)
		MatMulRef(wants[c], xs[c], w, 5)
	}
	errs := make(chan string, callers)
	for c := 0; c < callers; c++ {
		go func() {
			out := make([]float32, 5*96)
			for range 50 {
				p.MatMul(out, xs[c], w, 5)
				for i := range out {
					if math.Abs(float64(out[i]-wants[c][i])) > 1e-4 {
						errs <- fmt.Sprintf("caller %d: out[%d] = %g, want %g", c, i, out[i], wants[c][i])
						return
					}
				}
			}
			errs <- ""
		}()
	}
	for range callers {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
	p.Close()
	out := make([]float32, 5*96)
	p.MatMul(out, xs[0], w, 5)
	n := 0
	p.For(10, func(lo, hi int) { n += hi - lo })
	if math.Abs(float64(out[7]-wants[0][7])) > 1e-4 || n != 10 {
		t.Fatalf("after Close: out[7] = %g want %g, For covered %d of 10", out[7], wants[0][7], n)
	}
}

// FuzzMatMul compares MatMul on every kernel set with MatMulRef for fuzzed shapes.
func FuzzMatMul(f *testing.F) {
	f.Add(uint8(5), uint16(33), uint8(7), uint64(1))
	f.Add(uint8(172), uint16(64), uint8(1), uint64(2))
	f.Add(uint8(4), uint16(1), uint8(64), uint64(3))
	f.Add(uint8(9), uint16(300), uint8(13), uint64(4))
	f.Fuzz(func(t *testing.T, rows uint8, cols uint16, tok uint8, seed uint64) {
		r, k, n := int(rows)%200+1, int(cols)%800+1, int(tok)%70+1
		rng := rand.New(rand.NewPCG(seed, 99))
		w := randMatrix(rng, r, k)
		x := randVec(rng, n*k)
		want := make([]float32, n*r)
		MatMulRef(want, x, w, n)
		abs := absDots(x, w, n)
		p := NewPool(2)
		defer p.Close()
		got := make([]float32, n*r)
		for _, ks := range append(availableKernels(), nil) {
			old := kernels
			kernels = ks
			p.MatMul(got, x, w, n)
			kernels = old
			for i := range want {
				if !closeTo(got[i], want[i], abs[i]) {
					t.Fatalf("(%d, %d) t=%d kernels %s: out[%d] = %g, want %g", r, k, n, kernelName(ks), i, got[i], want[i])
				}
			}
		}
	})
}

func TestSplitTokens(t *testing.T) {
	for _, maxC := range []int{1, 3, 6} {
		for tok := 1; tok <= 70; tok++ {
			s := splitTokens(tok, maxC)
			ntiles := (tok + maxC - 1) / maxC
			sum := 0
			for i := 0; i < ntiles; i++ {
				c := s.width(i)
				if c < 1 || c > maxC || (i > 0 && c > s.width(i-1)) {
					t.Fatalf("t=%d maxC=%d: tile %d has width %d", tok, maxC, i, c)
				}
				sum += c
			}
			if sum != tok {
				t.Fatalf("t=%d maxC=%d: tiles cover %d tokens", tok, maxC, sum)
			}
		}
	}
}

// TestMatMulBatchInvariant checks that a token's output does not depend on how many
// tokens share the call or on the thread count: every tile shape sums an output element
// in the same order, so the bits are equal (the DESIGN's "tokens do not depend on
// batching").
func TestMatMulBatchInvariant(t *testing.T) {
	splitAlways(t)
	kernelModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		shapes := []struct{ rows, cols, gs int }{
			{13, 172, 0}, {64, 64, 0}, {37, 768, 0}, {9, 33, 0}, {30, 128, 64}, {7, 96, 32},
		}
		for _, sh := range shapes {
			var w Matrix
			if sh.gs > 0 {
				w = QuantizeQ8(randVec(rng, sh.rows*sh.cols), sh.rows, sh.cols, sh.gs)
			} else {
				w = randMatrix(rng, sh.rows, sh.cols)
			}
			const maxT = 61
			x := randVec(rng, maxT*sh.cols)
			single := make([]float32, maxT*sh.rows) // token by token, one thread
			p1 := NewPool(1)
			for r := 0; r < maxT; r++ {
				p1.MatMul(single[r*sh.rows:(r+1)*sh.rows], x[r*sh.cols:(r+1)*sh.cols], w, 1)
			}
			p1.Close()
			for _, threads := range []int{1, 2, 3} {
				p := NewPool(threads)
				for _, tok := range []int{1, 2, 4, 5, 6, 7, 13, 33, 49, maxT} {
					got := make([]float32, tok*sh.rows)
					p.MatMul(got, x, w, tok)
					for i := range got {
						if got[i] != single[i] {
							t.Fatalf("shape %v t=%d threads=%d: out[%d] = %x, token alone %x", sh, tok,
								threads, i, math.Float32bits(got[i]), math.Float32bits(single[i]))
						}
					}
				}
				p.Close()
			}
		}
	})
}
