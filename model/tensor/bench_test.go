package tensor

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Shapes of llama2c-110m (dim 768, hidden 2048, 12 layers, vocab 32000), fp32.
const (
	benchDim    = 768
	benchHidden = 2048
	benchLayers = 12
	benchVocab  = 32000
	benchMaxT   = 32
)

var benchShapes = []struct{ rows, cols int }{
	{benchDim, benchDim}, {benchHidden, benchDim}, {benchDim, benchHidden}, {benchVocab, benchDim},
}

// model110M holds the matrices one llama2c-110m token multiplies by, allocated once
// (about 440 MB) and filled with deterministic random values.
type model110M struct {
	layers []layer110M
	cls    Matrix // (vocab, dim)
}

type layer110M struct {
	wq, wk, wv, wo Matrix // (dim, dim)
	w1, w3         Matrix // (hidden, dim)
	w2             Matrix // (dim, hidden)
}

var (
	benchOnce  sync.Once
	benchModel *model110M
)

func load110M() *model110M {
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(42, 43))
		mk := func(rows, cols int) Matrix {
			v := make([]float32, rows*cols)
			for i := range v {
				v[i] = (rng.Float32() - 0.5) * 0.1
			}
			return Matrix{Rows: rows, Cols: cols, F32: v}
		}
		m := &model110M{}
		for range benchLayers {
			m.layers = append(m.layers, layer110M{
				wq: mk(benchDim, benchDim), wk: mk(benchDim, benchDim),
				wv: mk(benchDim, benchDim), wo: mk(benchDim, benchDim),
				w1: mk(benchHidden, benchDim), w3: mk(benchHidden, benchDim),
				w2: mk(benchDim, benchHidden),
			})
		}
		m.cls = mk(benchVocab, benchDim)
		benchModel = m
	})
	return benchModel
}

var (
	benchQ8Once  sync.Once
	benchQ8Model *model110M
)

// load110MQ8 returns the model of load110M quantized to Q8_0 with groups of 64.
func load110MQ8() *model110M {
	benchQ8Once.Do(func() {
		m := load110M()
		q := func(w Matrix) Matrix { return QuantizeQ8(w.F32, w.Rows, w.Cols, 64) }
		mq := &model110M{cls: q(m.cls)}
		for _, l := range m.layers {
			mq.layers = append(mq.layers, layer110M{
				wq: q(l.wq), wk: q(l.wk), wv: q(l.wv), wo: q(l.wo),
				w1: q(l.w1), w3: q(l.w3), w2: q(l.w2),
			})
		}
		benchQ8Model = mq
	})
	return benchQ8Model
}

// matrixFor returns a matrix of the model with the given shape, so the per-shape
// benchmarks stream real (cold) weights of the right size.
func (m *model110M) matrixFor(rows, cols int) Matrix {
	switch {
	case rows == benchVocab:
		return m.cls
	case rows == benchHidden:
		return m.layers[0].w1
	case cols == benchHidden:
		return m.layers[0].w2
	}
	return m.layers[0].wq
}

func reportMatMul(b *testing.B, rows, cols, t int) {
	sec := b.Elapsed().Seconds()
	n := float64(b.N)
	b.ReportMetric(n*float64(rows*cols*4)/sec/1e9, "GB/s")
	b.ReportMetric(n*float64(2*rows*cols*t)/sec/1e9, "GFLOP/s")
}

var benchThreads = []int{1, 2}

func BenchmarkMatMul(b *testing.B) {
	m := load110M()
	x := randVec(rand.New(rand.NewPCG(1, 1)), benchMaxT*benchHidden)
	out := make([]float32, benchMaxT*benchVocab)
	for _, sh := range benchShapes {
		w := m.matrixFor(sh.rows, sh.cols)
		for _, t := range []int{1, 4, 16, 32} {
			for _, threads := range benchThreads {
				name := fmt.Sprintf("%dx%d/t=%d/threads=%d", sh.rows, sh.cols, t, threads)
				b.Run(name, func(b *testing.B) {
					p := NewPool(threads)
					defer p.Close()
					for b.Loop() {
						p.MatMul(out, x, w, t)
					}
					reportMatMul(b, sh.rows, sh.cols, t)
				})
			}
		}
	}
}

// BenchmarkGonum runs the same products through gonum's pure-Go BLAS: Sgemv for t=1,
// Sgemm (x · wᵀ) otherwise. GOMAXPROCS is set to the thread count because gonum's Sgemm
// parallelises over GOMAXPROCS goroutines.
func BenchmarkGonum(b *testing.B) {
	m := load110M()
	x := randVec(rand.New(rand.NewPCG(1, 1)), benchMaxT*benchHidden)
	out := make([]float32, benchMaxT*benchVocab)
	var impl gonum.Implementation
	for _, sh := range benchShapes {
		w := m.matrixFor(sh.rows, sh.cols)
		for _, t := range []int{1, 4, 16, 32} {
			for _, threads := range benchThreads {
				if t == 1 && threads > 1 {
					continue // Sgemv is single-threaded
				}
				name := fmt.Sprintf("%dx%d/t=%d/threads=%d", sh.rows, sh.cols, t, threads)
				b.Run(name, func(b *testing.B) {
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
					for b.Loop() {
						if t == 1 {
							impl.Sgemv(blas.NoTrans, w.Rows, w.Cols, 1, w.F32, w.Cols, x, 1, 0, out, 1)
						} else {
							impl.Sgemm(blas.NoTrans, blas.Trans, t, w.Rows, w.Cols, 1, x, w.Cols,
								w.F32, w.Cols, 0, out, w.Rows)
						}
					}
					reportMatMul(b, sh.rows, sh.cols, t)
				})
			}
		}
	}
}

// forward110M runs the matmuls of one decode step of t tokens: per layer q, k, v, o
// (dim x dim), w1, w3 (hidden x dim), w2 (dim x hidden); then the classifier.
func forward110M(p *Pool, m *model110M, x, h, out []float32, t int) {
	for i := range m.layers {
		l := &m.layers[i]
		p.MatMul(out, x, l.wq, t)
		p.MatMul(out, x, l.wk, t)
		p.MatMul(out, x, l.wv, t)
		p.MatMul(out, x, l.wo, t)
		p.MatMul(h, x, l.w1, t)
		p.MatMul(h, x, l.w3, t)
		p.MatMul(out, h, l.w2, t)
	}
	p.MatMul(out, x, m.cls, t)
}

// BenchmarkToken110M reports decode throughput in tokens/s (aggregate over t sequences)
// of the matmuls alone: the attention, norms and activations are not included. Besides
// wall-clock tok/s it reports tok/cpu-s, tokens per CPU-second of the process times the
// thread count: what the run would reach if each thread had a core to itself, which is
// the more stable figure on a machine shared with other work.
func BenchmarkToken110M(b *testing.B) {
	benchToken(b, load110M(), 440e6)
}

// BenchmarkToken110MQ8 is BenchmarkToken110M with the weights quantized to Q8_0 in
// groups of 64 (llama2.c runq's default): 110 MB of int8 plus 7 MB of scales per token.
func BenchmarkToken110MQ8(b *testing.B) {
	benchToken(b, load110MQ8(), 117e6)
}

func benchToken(b *testing.B, m *model110M, bytesPerToken float64) {
	rng := rand.New(rand.NewPCG(2, 2))
	x := randVec(rng, benchMaxT*benchDim)    // (t, dim)
	h := randVec(rng, benchMaxT*benchHidden) // (t, hidden)
	out := make([]float32, benchMaxT*benchVocab)
	for _, t := range []int{1, 32} {
		for _, threads := range benchThreads {
			b.Run(fmt.Sprintf("t=%d/threads=%d", t, threads), func(b *testing.B) {
				p := NewPool(threads)
				defer p.Close()
				cpu0 := processCPU()
				for b.Loop() {
					forward110M(p, m, x, h, out, t)
				}
				sec := b.Elapsed().Seconds()
				b.ReportMetric(float64(b.N*t)/sec, "tok/s")
				b.ReportMetric(float64(b.N)*bytesPerToken/sec/1e9, "GB/s")
				if cpu := (processCPU() - cpu0).Seconds(); cpu > 0 {
					b.ReportMetric(float64(b.N*t*threads)/cpu, "tok/cpu-s")
				}
			})
		}
	}
}

// BenchmarkPoolOverhead measures the cost of waking the workers for an empty For
// (ns/op is the cost of one call).
func BenchmarkPoolOverhead(b *testing.B) {
	for _, threads := range benchThreads {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			p := NewPool(threads)
			defer p.Close()
			fn := func(lo, hi int) {}
			for b.Loop() {
				p.For(threads, fn)
			}
		})
	}
}
