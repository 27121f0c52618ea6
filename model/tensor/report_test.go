package tensor

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

var report = flag.Bool("kernels.report", false,
	"print the kernel report of docs/benchmarks-kernels.md (best and median of repeated runs)")

// timings runs f n times and returns the sorted wall times.
func timings(n int, f func()) []time.Duration {
	ts := make([]time.Duration, n)
	for i := range ts {
		start := time.Now()
		f()
		ts[i] = time.Since(start)
	}
	slices.Sort(ts)
	return ts
}

// TestKernelReport prints markdown tables of the llama2c-110m shapes: the whole-token
// matmul sequence and each matmul against gonum, as the best and the median of repeated
// runs. The best run is the figure least disturbed by other work on a shared machine.
// It runs only with -kernels.report.
func TestKernelReport(t *testing.T) {
	if !*report {
		t.Skip("run with -kernels.report")
	}
	w := os.Stdout
	fmt.Fprintf(w, "kernels: %s, GOMAXPROCS %d, %s\n\n", kernelName(kernels), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))

	rng := rand.New(rand.NewPCG(2, 2))
	x := randVec(rng, benchMaxT*benchHidden)
	h := randVec(rng, benchMaxT*benchHidden)
	out := make([]float32, benchMaxT*benchVocab)

	fmt.Fprintln(w, "| weights | t | threads | best tok/s | median tok/s | best GB/s |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, mc := range []struct {
		name  string
		m     *model110M
		bytes float64
	}{{"fp32", load110M(), 440e6}, {"Q8_0 gs=64", load110MQ8(), 117e6}} {
		for _, tok := range []int{1, 32} {
			for _, threads := range benchThreads {
				p := NewPool(threads)
				n := 40
				if tok > 1 {
					n = 12
				}
				ts := timings(n, func() { forward110M(p, mc.m, x, h, out, tok) })
				p.Close()
				fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.1f | %.1f |\n", mc.name, tok, threads,
					float64(tok)/ts[0].Seconds(), float64(tok)/ts[n/2].Seconds(), mc.bytes/ts[0].Seconds()/1e9)
			}
		}
	}

	fmt.Fprintln(w, "\n| shape | t | ours 1 thr | ours 2 thr | gonum 1 thr | gonum 2 thr | ours/gonum (1 thr) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	m := load110M()
	var impl gonum.Implementation
	for _, sh := range benchShapes {
		wm := m.matrixFor(sh.rows, sh.cols)
		for _, tok := range []int{1, 4, 16, 32} {
			flops := float64(2 * sh.rows * sh.cols * tok)
			n := max(5, min(200, int(2e9/flops)))
			var ours, theirs [2]time.Duration
			for ti, threads := range benchThreads {
				p := NewPool(threads)
				ours[ti] = timings(n, func() { p.MatMul(out, x, wm, tok) })[0]
				p.Close()
				prev := runtime.GOMAXPROCS(threads)
				gn := max(3, n/8)
				theirs[ti] = timings(gn, func() {
					if tok == 1 {
						impl.Sgemv(blas.NoTrans, wm.Rows, wm.Cols, 1, wm.F32, wm.Cols, x, 1, 0, out, 1)
					} else {
						impl.Sgemm(blas.NoTrans, blas.Trans, tok, wm.Rows, wm.Cols, 1, x, wm.Cols,
							wm.F32, wm.Cols, 0, out, wm.Rows)
					}
				})[0]
				runtime.GOMAXPROCS(prev)
			}
			rate := func(d time.Duration) string {
				if tok == 1 {
					return fmt.Sprintf("%.1f GB/s", float64(sh.rows*sh.cols*4)/d.Seconds()/1e9)
				}
				return fmt.Sprintf("%.1f GFLOP/s", flops/d.Seconds()/1e9)
			}
			fmt.Fprintf(w, "| %dx%d | %d | %s | %s | %s | %s | %.1fx |\n", sh.rows, sh.cols, tok,
				rate(ours[0]), rate(ours[1]), rate(theirs[0]), rate(theirs[1]),
				theirs[0].Seconds()/ours[0].Seconds())
		}
	}
}
