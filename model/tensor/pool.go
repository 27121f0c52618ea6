package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// minSplitFlops is the work (multiply-adds) below which MatMul runs inline on the caller:
// waking a worker costs about a microsecond, more than a tiny matmul (the 260K model's
// 64x64) takes. Tests lower it to exercise the split on small shapes.
var minSplitFlops = 1 << 16

// A MatMul is cut into about chunksPerThread chunks per thread, of at least minChunkRows
// rows (a chunk of a 768-wide matrix is then at least 96 KB of weights).
const (
	chunksPerThread = 8
	minChunkRows    = 32
)

// Pool runs kernels on a fixed set of worker goroutines started once by NewPool. The
// caller always computes the first share itself, so a Pool of n threads has n-1 workers.
// Calls allocate nothing. Concurrent calls are safe and run one after another; a
// function run by For must not call back into its own Pool (that would deadlock).
type Pool struct {
	threads int
	mu      sync.Mutex     // serialises the calls that use the workers; guards the fields below
	work    []chan job     // one per worker; each carries one job per call
	done    sync.WaitGroup // counts the workers' jobs of the current call
	next    atomic.Int64   // the next chunk of rows of the current MatMul
}

// job is one thread's share of a call over [0, n) cut in chunks of chunk: For runs
// fn on chunk part; MatMul claims chunks of rows from next until none is left, so a
// thread that starts late or is descheduled does less of the work.
type job struct {
	fn       func(lo, hi int) // For; nil for MatMul
	out, x   []float32
	w        Matrix
	t        int
	n, chunk int
	part     int           // For: the chunk of this job
	next     *atomic.Int64 // MatMul: the next unclaimed chunk
}

func (j *job) run() {
	if j.fn != nil {
		lo := j.part * j.chunk
		j.fn(lo, min(j.n, lo+j.chunk))
		return
	}
	for {
		lo := int(j.next.Add(1)-1) * j.chunk
		if lo >= j.n {
			return
		}
		matmulRange(j.out, j.x, j.w, j.t, lo, min(j.n, lo+j.chunk))
	}
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.work) == 0 { // closed
		matmulRange(out, x, w, t, 0, w.Rows)
		return
	}
	// Chunks are whole tiles of rows, so that the row blocks, and the bits of every
	// output, are those of a single thread.
	chunk := max(minChunkRows, ceilDiv(w.Rows, p.threads*chunksPerThread))
	chunk = ceilDiv(chunk, maxTileR) * maxTileR
	p.next.Store(0)
	p.start(job{out: out, x: x, w: w, t: t, n: w.Rows, chunk: chunk, next: &p.next},
		min(p.threads, ceilDiv(w.Rows, chunk)))
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.work) == 0 { // closed
		fn(0, n)
		return
	}
	chunk := ceilDiv(n, min(p.threads, n))
	p.start(job{fn: fn, n: n, chunk: chunk}, ceilDiv(n, chunk))
}

// start runs j as part 0 on the caller and parts 1 .. parts-1 on the workers, and waits
// for all of them. p.mu must be held.
func (p *Pool) start(j job, parts int) {
	p.done.Add(parts - 1)
	for w := 1; w < parts; w++ {
		jw := j
		jw.part = w
		p.work[w-1] <- jw
	}
	j.part = 0
	j.run()
	p.done.Wait()
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
