package tensor

import (
	"runtime"
	"sync"
)

// minSplitFlops is the work (multiply-adds) below which MatMul runs inline on the caller:
// waking a worker costs about a microsecond, more than a tiny matmul (the 260K model's
// 64x64) takes. Tests lower it to exercise the split on small shapes.
var minSplitFlops = 1 << 16

// Pool runs kernels on a fixed set of worker goroutines started once by NewPool. The
// caller always computes the first share itself, so a Pool of n threads has n-1 workers.
// Calls allocate nothing. Concurrent calls are safe and run one after another; a
// function run by For must not call back into its own Pool (that would deadlock).
type Pool struct {
	threads int
	mu      sync.Mutex     // serialises the calls that use the workers; guards work and done
	work    []chan job     // one per worker; each carries one job per call
	done    sync.WaitGroup // counts the workers' jobs of the current call
}

// job is one worker's share of a call: fn(lo, hi) for For, otherwise rows [lo, hi) of
// a MatMul.
type job struct {
	fn     func(lo, hi int)
	out, x []float32
	w      Matrix
	t      int
	lo, hi int
}

func (j *job) run() {
	if j.fn != nil {
		j.fn(j.lo, j.hi)
		return
	}
	matmulRange(j.out, j.x, j.w, j.t, j.lo, j.hi)
}

// NewPool starts a pool of threads threads; threads <= 0 means runtime.GOMAXPROCS(0) and
// 1 runs everything inline on the caller.
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads, work: make([]chan job, threads-1)}
	for i := range p.work {
		ch := make(chan job, 1)
		p.work[i] = ch
		go p.worker(ch)
	}
	return p
}

func (p *Pool) worker(ch chan job) {
	for j := range ch {
		j.run()
		p.done.Done()
	}
}

// Threads returns the number of threads the pool computes on, counting the caller.
func (p *Pool) Threads() int { return p.threads }

// Close stops the workers. Calls made afterwards run inline on the caller.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.work {
		close(ch)
	}
	p.work = nil
}

// MatMul sets out (t, w.Rows) = x (t, w.Cols) · wᵀ, that is
// out[r*w.Rows+i] = Σ_j x[r*w.Cols+j]·w[i,j], splitting w's rows over the threads so that
// each streams a disjoint part of w. Q8 weights multiply fp32 activations, accumulate per
// group, then scale.
func (p *Pool) MatMul(out, x []float32, w Matrix, t int) {
	checkMatMul(out, x, w, t)
	if p.threads == 1 || w.Rows*w.Cols*t < minSplitFlops {
		matmulRange(out, x, w, t, 0, w.Rows)
		return
	}
	p.split(job{out: out, x: x, w: w, t: t}, w.Rows, maxTileR)
}

// For runs fn(lo, hi) over a partition of [0, n) into at most Threads() contiguous
// ranges, concurrently; it returns when all have returned. fn must be safe for
// concurrent calls on disjoint ranges.
func (p *Pool) For(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if p.threads == 1 || n == 1 {
		fn(0, n)
		return
	}
	p.split(job{fn: fn}, n, 1)
}

// split hands [0, n) in ranges of whole multiples of align to the workers and runs the
// first range on the caller.
func (p *Pool) split(j job, n, align int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.work) == 0 { // closed
		j.lo, j.hi = 0, n
		j.run()
		return
	}
	parts := min(p.threads, (n+align-1)/align)
	chunk := (n + parts - 1) / parts
	chunk = (chunk + align - 1) / align * align
	parts = (n + chunk - 1) / chunk
	p.done.Add(parts - 1)
	for w := 1; w < parts; w++ {
		jw := j
		jw.lo, jw.hi = w*chunk, min(n, (w+1)*chunk)
		p.work[w-1] <- jw
	}
	j.lo, j.hi = 0, min(n, chunk)
	j.run()
	p.done.Wait()
}
