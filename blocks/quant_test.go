package blocks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestQuantizationBounds writes rows of many kinds through a one-block cache and checks
// the error of every element read back against the dtype's bound.
func TestQuantizationBounds(t *testing.T) {
	const hs = 16
	rng := rand.New(rand.NewPCG(11, 12))
	rows := map[string][]float32{
		"zeros":          make([]float32, hs),
		"one spike":      append([]float32{1000}, make([]float32, hs-1)...),
		"negative spike": append(make([]float32, hs-1), -3e-3),
		"tiny":           randVec(rng, hs, 1e-30),
		"mixed scales":   {1e-6, -1e-3, 0.5, -7, 100, 3, -2, 1, 0, 0.25, -0.125, 9, 11, -13, 4e4, -6e4},
		"exact levels":   {-7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 7},
	}
	for i := range 50 {
		rows[fmt.Sprintf("random %d", i)] = randVec(rng, hs, float32(math.Ldexp(1, rng.IntN(20)-10)))
	}
	for _, d := range allDTypes {
		cfg := Config{Shape: Shape{Layers: 1, KVHeads: 1, HeadSize: hs, BlockSize: 1}, DType: d, NumBlocks: 1}
		c := newTestCache(t, cfg)
		tb := &Table{}
		c.Append(tb, 1)
		got := make([]float32, hs)
		for name, x := range rows {
			c.Write(0, 0, 0, x, x)
			c.ReadV(got, 0, 0, 0, 0)
			ma := maxAbs(x)
			for i := range x {
				e := math.Abs(float64(got[i]) - float64(x[i]))
				bound := elemBound(d, x[i], ma)
				if d == FP16 && math.Abs(float64(x[i])) > 65504 {
					bound = math.Inf(1)
				}
				if e > bound {
					t.Errorf("%v %s: element %d wrote %g read %g, error %g > %g", d, name, i, x[i], got[i], e, bound)
				}
			}
			if name == "exact levels" && (d == FP16 || d == Int4) { // the int4 grid at maxabs 7 is the integers
				for i := range x {
					if got[i] != x[i] {
						t.Errorf("%v: level %g read as %g", d, x[i], got[i])
					}
				}
			}
		}
		c.Release(tb)
	}
}

// benchShape is the benchmark's head: 512 positions of head size 64 in 32 blocks of 16.
var benchShape = Shape{Layers: 1, KVHeads: 1, HeadSize: 64, BlockSize: 16}

// smallHead is stories260K's head size, where the cost per call matters more.
var smallHead = Shape{Layers: 1, KVHeads: 1, HeadSize: 8, BlockSize: 16}

const benchPositions = 512

// filledCache returns a cache of benchShape whose one table holds benchPositions random
// tokens.
func filledCache(tb testing.TB, d DType) (*Cache, *Table) {
	return filledCacheOf(tb, benchShape, d)
}

func filledCacheOf(tb testing.TB, sh Shape, d DType) (*Cache, *Table) {
	c, err := New(Config{Shape: sh, DType: d, NumBlocks: benchPositions / sh.BlockSize})
	if err != nil {
		tb.Fatal(err)
	}
	t := &Table{}
	c.Append(t, benchPositions)
	rng := rand.New(rand.NewPCG(13, 14))
	for pos := range benchPositions {
		b, s := t.Slot(pos)
		x := randVec(rng, sh.HeadSize, 1)
		c.Write(b, s, 0, x, x)
	}
	return c, t
}

// attend is what the model's attention does with the cache for one head and the last
// position: Scores block by block, then AccumV block by block.
func attend(c *Cache, t *Table, q, att, out []float32) {
	bs := c.BlockSize()
	for b, start := 0, 0; start < t.Len; b, start = b+1, start+bs {
		c.Scores(att[start:], q, t.Blocks[b], 0, 0, min(bs, t.Len-start))
	}
	for b, start := 0, 0; start < t.Len; b, start = b+1, start+bs {
		c.AccumV(out, att[start:], t.Blocks[b], 0, 0, min(bs, t.Len-start))
	}
}

func TestHotPathAllocatesNothing(t *testing.T) {
	for _, d := range allDTypes {
		c, tb := filledCache(t, d)
		q := make([]float32, benchShape.HeadSize)
		att := make([]float32, benchPositions)
		out := make([]float32, benchShape.HeadSize)
		x := make([]float32, benchShape.HeadSize)
		if n := testing.AllocsPerRun(10, func() { attend(c, tb, q, att, out) }); n != 0 {
			t.Errorf("%v: Scores+AccumV allocate %v times", d, n)
		}
		if n := testing.AllocsPerRun(10, func() { c.Write(tb.Blocks[3], 5, 0, x, x) }); n != 0 {
			t.Errorf("%v: Write allocates %v times", d, n)
		}
		if n := testing.AllocsPerRun(10, func() { c.ReadK(x, tb.Blocks[3], 5, 0, 0) }); n != 0 {
			t.Errorf("%v: ReadK allocates %v times", d, n)
		}
		c.Release(tb)
	}
}

// TestConcurrentReads runs attention over the same blocks from several goroutines (as the
// model's workers do) and checks each gets the single-threaded answer; run with -race it
// also shows the reads share no mutable state.
func TestConcurrentReads(t *testing.T) {
	for _, d := range allDTypes {
		c, tb := filledCache(t, d)
		rng := rand.New(rand.NewPCG(15, 16))
		q := randVec(rng, benchShape.HeadSize, 1)
		want := make([]float32, benchShape.HeadSize)
		attend(c, tb, q, make([]float32, benchPositions), want)
		var wg sync.WaitGroup
		errs := make(chan string, 4)
		for range 4 {
			wg.Go(func() {
				att := make([]float32, benchPositions)
				for range 20 {
					out := make([]float32, benchShape.HeadSize)
					attend(c, tb, q, att, out)
					for i := range out {
						if out[i] != want[i] {
							errs <- fmt.Sprintf("%v: element %d %v, want %v", d, i, out[i], want[i])
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		c.Release(tb)
	}
}

func BenchmarkAttend(b *testing.B) {
	for _, sh := range []Shape{benchShape, smallHead} {
		for _, d := range allDTypes {
			b.Run(fmt.Sprintf("hs%d/%v", sh.HeadSize, d), func(b *testing.B) {
				c, tb := filledCacheOf(b, sh, d)
				rng := rand.New(rand.NewPCG(17, 18))
				q := randVec(rng, sh.HeadSize, 1)
				att := make([]float32, benchPositions)
				out := make([]float32, sh.HeadSize)
				b.ReportAllocs()
				cpu := processCPU()
				for b.Loop() {
					attend(c, tb, q, att, out)
				}
				cpu = processCPU() - cpu
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchPositions, "ns/position")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/benchPositions, "cpu-ns/position")
			})
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, d := range allDTypes {
		b.Run(d.String(), func(b *testing.B) {
			c, tb := filledCache(b, d)
			x := randVec(rand.New(rand.NewPCG(19, 20)), benchShape.HeadSize, 1)
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				c.Write(tb.Blocks[1], 3, 0, x, x)
			}
			cpu = processCPU() - cpu
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// TestConcurrentWritesOfDifferentSlots: writes of different slots of one block touch
// disjoint memory (also for packed int4), so they may run at once; -race checks it.
func TestConcurrentWritesOfDifferentSlots(t *testing.T) {
	for _, d := range allDTypes {
		c := newTestCache(t, testConfig(1, d))
		tb := &Table{}
		c.Append(tb, smallShape.BlockSize)
		kvDim := smallShape.KVHeads * smallShape.HeadSize
		rows := make([][]float32, smallShape.BlockSize)
		for s := range rows {
			rows[s] = randVec(rand.New(rand.NewPCG(uint64(s), 23)), kvDim, 1)
		}
		var wg sync.WaitGroup
		for s := range rows {
			wg.Go(func() {
				for l := range smallShape.Layers {
					c.Write(tb.Blocks[0], s, l, rows[s], rows[s])
				}
			})
		}
		wg.Wait()
		got := make([]float32, smallShape.HeadSize)
		for s, x := range rows {
			for h := range smallShape.KVHeads {
				want := x[h*smallShape.HeadSize : (h+1)*smallShape.HeadSize]
				ma := maxAbs(want)
				c.ReadK(got, tb.Blocks[0], s, 1, h)
				for i := range got {
					if math.Abs(float64(got[i]-want[i])) > elemBound(d, want[i], ma) {
						t.Fatalf("%v slot %d head %d: %v, wrote %v", d, s, h, got, want)
					}
				}
			}
		}
		c.Release(tb)
	}
}
