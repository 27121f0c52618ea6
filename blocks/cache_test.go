package blocks

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// A step of a table script: an operation on the named table and what must hold after it.
type step struct {
	op       string // append, fork (t from src), release, truncate
	t, src   string
	n        int
	fail     bool  // append must return false
	need     int   // append: BlocksNeeded before it
	blocks   []int // t.Blocks after the step
	free     int   // NumFree after the step
	freeList []int // eviction order after the step, if set
}

func TestTableScripts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		numBlocks int
		steps     []step
	}{
		{"append fills a block before taking the next", 4, []step{
			{op: "append", t: "a", n: 3, need: 1, blocks: []int{0}, free: 3},
			{op: "append", t: "a", n: 1, need: 0, blocks: []int{0}, free: 3},
			{op: "append", t: "a", n: 1, need: 1, blocks: []int{0, 1}, free: 2},
			{op: "append", t: "a", n: 0, need: 0, blocks: []int{0, 1}, free: 2},
		}},
		{"append is all or nothing", 4, []step{
			{op: "append", t: "a", n: 17, need: 5, fail: true, blocks: nil, free: 4},
			{op: "append", t: "a", n: 16, need: 4, blocks: []int{0, 1, 2, 3}, free: 0},
			{op: "append", t: "a", n: 1, need: 1, fail: true, blocks: []int{0, 1, 2, 3}, free: 0},
		}},
		{"fork shares; the first to write a shared partial block copies it", 4, []step{
			{op: "append", t: "a", n: 6, need: 2, blocks: []int{0, 1}, free: 2},
			{op: "fork", t: "b", src: "a", blocks: []int{0, 1}, free: 2},
			{op: "append", t: "b", n: 1, need: 1, blocks: []int{0, 2}, free: 1},
			{op: "append", t: "a", n: 1, need: 0, blocks: []int{0, 1}, free: 1},
			{op: "release", t: "a", blocks: nil, free: 2, freeList: []int{3, 1}},
			{op: "release", t: "b", blocks: nil, free: 4, freeList: []int{3, 1, 2, 0}},
		}},
		{"fork at a block boundary copies nothing", 4, []step{
			{op: "append", t: "a", n: 4, need: 1, blocks: []int{0}, free: 3},
			{op: "fork", t: "b", src: "a", blocks: []int{0}, free: 3},
			{op: "append", t: "b", n: 1, need: 1, blocks: []int{0, 1}, free: 2},
			{op: "append", t: "a", n: 5, need: 2, blocks: []int{0, 2, 3}, free: 0},
		}},
		{"copy on write needs a free block", 4, []step{
			{op: "append", t: "a", n: 6, blocks: []int{0, 1}, free: 2, need: 2},
			{op: "fork", t: "b", src: "a", blocks: []int{0, 1}, free: 2},
			{op: "append", t: "c", n: 8, need: 2, blocks: []int{2, 3}, free: 0},
			{op: "append", t: "b", n: 1, need: 1, fail: true, blocks: []int{0, 1}, free: 0},
			{op: "release", t: "c", blocks: nil, free: 2, freeList: []int{3, 2}},
			{op: "append", t: "b", n: 1, need: 1, blocks: []int{0, 3}, free: 1},
		}},
		{"release frees the tail first", 4, []step{
			{op: "append", t: "a", n: 8, need: 2, blocks: []int{0, 1}, free: 2},
			{op: "release", t: "a", blocks: nil, free: 4, freeList: []int{2, 3, 1, 0}},
			{op: "append", t: "a", n: 12, need: 3, blocks: []int{2, 3, 1}, free: 1},
		}},
		{"truncate keeps whole blocks of the kept tokens", 4, []step{
			{op: "append", t: "a", n: 9, need: 3, blocks: []int{0, 1, 2}, free: 1},
			{op: "truncate", t: "a", n: 9, blocks: []int{0, 1, 2}, free: 1},
			{op: "truncate", t: "a", n: 5, blocks: []int{0, 1}, free: 2, freeList: []int{3, 2}},
			{op: "truncate", t: "a", n: 4, blocks: []int{0}, free: 3, freeList: []int{3, 2, 1}},
			{op: "append", t: "a", n: 1, need: 1, blocks: []int{0, 3}, free: 2},
			{op: "truncate", t: "a", n: 0, blocks: nil, free: 4},
		}},
		{"truncating a fork into a shared block copies on the next append", 4, []step{
			{op: "append", t: "a", n: 8, need: 2, blocks: []int{0, 1}, free: 2},
			{op: "fork", t: "b", src: "a", blocks: []int{0, 1}, free: 2},
			{op: "truncate", t: "b", n: 6, blocks: []int{0, 1}, free: 2},
			{op: "append", t: "b", n: 1, need: 1, blocks: []int{0, 2}, free: 1},
			{op: "truncate", t: "b", n: 2, blocks: []int{0}, free: 2},
			{op: "append", t: "b", n: 1, need: 1, blocks: []int{3}, free: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(t, testConfig(tc.numBlocks, FP32))
			tables := map[string]*Table{}
			get := func(name string) *Table {
				if tables[name] == nil {
					tables[name] = &Table{}
				}
				return tables[name]
			}
			for i, s := range tc.steps {
				tb := get(s.t)
				switch s.op {
				case "append":
					if need := c.BlocksNeeded(tb, s.n); need != s.need {
						t.Fatalf("step %d: BlocksNeeded(%s, %d) = %d, want %d", i, s.t, s.n, need, s.need)
					}
					before := tb.Len
					ok := c.Append(tb, s.n)
					if ok == s.fail {
						t.Fatalf("step %d: Append(%s, %d) = %v", i, s.t, s.n, ok)
					}
					if want := before + s.n; ok && tb.Len != want || !ok && tb.Len != before {
						t.Fatalf("step %d: Len %d after Append(%d) from %d = %v", i, tb.Len, s.n, before, ok)
					}
				case "fork":
					tables[s.t] = c.Fork(get(s.src))
					tb = tables[s.t]
				case "release":
					c.Release(tb)
				case "truncate":
					c.Truncate(tb, s.n)
					if tb.Len != s.n {
						t.Fatalf("step %d: Len %d after Truncate(%d)", i, tb.Len, s.n)
					}
				}
				if !slices.Equal(tb.Blocks, s.blocks) {
					t.Fatalf("step %d %s %s: blocks %v, want %v", i, s.op, s.t, tb.Blocks, s.blocks)
				}
				if c.NumFree() != s.free {
					t.Fatalf("step %d %s %s: %d free, want %d", i, s.op, s.t, c.NumFree(), s.free)
				}
				if s.freeList != nil {
					if got := c.pool.FreeList(nil); !slices.Equal(got, s.freeList) {
						t.Fatalf("step %d %s %s: free list %v, want %v", i, s.op, s.t, got, s.freeList)
					}
				}
				if err := c.Check(); err != nil {
					t.Fatalf("step %d %s %s: %v", i, s.op, s.t, err)
				}
			}
			for _, tb := range tables {
				c.Release(tb)
			}
			if c.NumFree() != c.NumBlocks() {
				t.Fatalf("%d of %d blocks free after releasing every table", c.NumFree(), c.NumBlocks())
			}
		})
	}
}

// TestCopyOnWriteKeepsBothSequences writes a prompt, forks it, and checks that each fork's
// new token lands in its own copy while the shared prefix reads the same through both.
func TestCopyOnWriteKeepsBothSequences(t *testing.T) {
	for _, d := range allDTypes {
		t.Run(d.String(), func(t *testing.T) {
			c := newTestCache(t, testConfig(8, d))
			rng := rand.New(rand.NewPCG(3, 4))
			kvDim := smallShape.KVHeads * smallShape.HeadSize
			write := func(tb *Table, pos int) []float32 {
				k := randVec(rng, kvDim, 1)
				for l := range smallShape.Layers {
					b, s := tb.Slot(pos)
					c.Write(b, s, l, k, k)
				}
				return k
			}
			a := &Table{}
			c.Append(a, 6)
			var prompt [][]float32
			for p := range 6 {
				prompt = append(prompt, write(a, p))
			}
			b := c.Fork(a)
			c.Append(a, 1)
			c.Append(b, 1)
			ka, kb := write(a, 6), write(b, 6)
			read := func(tb *Table, pos int) []float32 {
				dst := make([]float32, kvDim)
				for h := range smallShape.KVHeads {
					blk, s := tb.Slot(pos)
					c.ReadK(dst[h*smallShape.HeadSize:], blk, s, 1, h)
				}
				return dst
			}
			want := func(x []float32) []float32 {
				got := make([]float32, kvDim)
				c2 := newTestCache(t, testConfig(1, d))
				tb := &Table{}
				c2.Append(tb, 1)
				c2.Write(0, 0, 1, x, x)
				for h := range smallShape.KVHeads {
					c2.ReadK(got[h*smallShape.HeadSize:], 0, 0, 1, h)
				}
				c2.Release(tb)
				return got
			}
			for p := range 6 {
				if !slices.Equal(read(a, p), read(b, p)) || !slices.Equal(read(a, p), want(prompt[p])) {
					t.Fatalf("position %d differs between forks", p)
				}
			}
			if !slices.Equal(read(a, 6), want(ka)) || !slices.Equal(read(b, 6), want(kb)) {
				t.Fatal("a fork's own token was overwritten")
			}
			c.Release(a)
			c.Release(b)
		})
	}
}

func TestSlot(t *testing.T) {
	c := newTestCache(t, testConfig(4, FP32))
	tb := &Table{}
	c.Append(tb, 9)
	defer c.Release(tb)
	for pos, want := range [][2]int{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 0}, {1, 1}, {1, 2}, {1, 3}, {2, 0}} {
		if b, s := tb.Slot(pos); b != want[0] || s != want[1] {
			t.Errorf("Slot(%d) = %d, %d; want %v", pos, b, s, want)
		}
	}
}

// TestMisusePanics: programmer errors panic rather than corrupt the cache.
func TestMisusePanics(t *testing.T) {
	kv := make([]float32, smallShape.KVHeads*smallShape.HeadSize)
	for _, tc := range []struct {
		name string
		f    func(c *Cache, tb *Table)
	}{
		{"negative append", func(c *Cache, tb *Table) { c.Append(tb, -1) }},
		{"truncate beyond length", func(c *Cache, tb *Table) { c.Truncate(tb, tb.Len+1) }},
		{"slot beyond length", func(c *Cache, tb *Table) { tb.Slot(tb.Len) }},
		{"write to a free block", func(c *Cache, tb *Table) { c.Write(3, 0, 0, kv, kv) }},
		{"write to a shared block", func(c *Cache, tb *Table) {
			f := c.Fork(tb)
			defer c.Release(f)
			c.Write(tb.Blocks[0], 0, 0, kv, kv)
		}},
		{"write to a hashed block", func(c *Cache, tb *Table) {
			c.SetHash(tb, 0, hashOf(1))
			c.Write(tb.Blocks[0], 0, 0, kv, kv)
		}},
		{"write of the wrong width", func(c *Cache, tb *Table) { c.Write(tb.Blocks[0], 0, 0, kv[1:], kv) }},
		{"layer out of range", func(c *Cache, tb *Table) { c.Write(tb.Blocks[0], 0, 2, kv, kv) }},
		{"slot out of range", func(c *Cache, tb *Table) { c.Write(tb.Blocks[0], 4, 0, kv, kv) }},
		{"head out of range", func(c *Cache, tb *Table) { c.ReadK(kv, tb.Blocks[0], 0, 0, 2) }},
		{"scores over more than a block", func(c *Cache, tb *Table) { c.Scores(kv, kv[:8], tb.Blocks[0], 0, 0, 5) }},
		{"query of the wrong width", func(c *Cache, tb *Table) { c.Scores(kv, kv[:7], tb.Blocks[0], 0, 0, 1) }},
		{"hash of a partial block", func(c *Cache, tb *Table) { c.SetHash(tb, 1, hashOf(1)) }},
		{"cached block on a partial table", func(c *Cache, tb *Table) {
			c.SetHash(tb, 0, hashOf(1))
			c.AppendCached(tb, tb.Blocks[0])
		}},
		{"unhashed block as cached", func(c *Cache, tb *Table) { c.AppendCached(&Table{}, tb.Blocks[0]) }},
		{"table of another cache", func(c *Cache, tb *Table) {
			other, _ := New(testConfig(2, FP32))
			other.Append(tb, 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(t, testConfig(4, FP32))
			tb := &Table{}
			c.Append(tb, 6)
			defer c.Release(tb)
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f(c, tb)
		})
	}
}

// TestPoolWholeAfterAnyMix runs random mixes of sequences, forks and truncations and checks
// that releasing every table gives every block back.
func TestPoolWholeAfterAnyMix(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		c := newTestCache(t, testConfig(16, FP32))
		var live []*Table
		for range 200 {
			switch r := rng.IntN(10); {
			case r < 5 || len(live) == 0:
				tb := &Table{}
				if len(live) > 0 && r < 2 {
					tb = live[rng.IntN(len(live))]
				} else {
					live = append(live, tb)
				}
				c.Append(tb, rng.IntN(10))
			case r < 7:
				live = append(live, c.Fork(live[rng.IntN(len(live))]))
			case r < 8:
				tb := live[rng.IntN(len(live))]
				c.Truncate(tb, rng.IntN(tb.Len+1))
			default:
				i := rng.IntN(len(live))
				c.Release(live[i])
				live = slices.Delete(live, i, i+1)
			}
			if err := c.Check(); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		}
		rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
		for _, tb := range live {
			c.Release(tb)
		}
		if c.NumFree() != c.NumBlocks() {
			t.Fatalf("seed %d: %d of %d blocks free after every sequence ended", seed, c.NumFree(), c.NumBlocks())
		}
	}
}

func TestVerifyModePanicsOnCorruption(t *testing.T) {
	c, err := New(testConfig(4, FP32))
	if err != nil {
		t.Fatal(err)
	}
	tb := &Table{}
	c.Append(tb, 5)
	c.pool.ref[tb.Blocks[0]]++ // a reference no table holds
	defer func() {
		if recover() == nil {
			t.Error("Append in verify mode passed a corrupt pool")
		}
	}()
	c.Append(tb, 1)
}

// TestTableOpsAllocateNothingWhenWarm: once a table's slice has grown, appending,
// truncating and releasing it allocate nothing.
func TestTableOpsAllocateNothingWhenWarm(t *testing.T) {
	cfg := testConfig(64, FP32)
	cfg.Verify = false
	c := newTestCache(t, cfg)
	tb := &Table{}
	cycle := func() {
		for range 40 {
			c.Append(tb, 3)
		}
		c.Truncate(tb, 50)
		c.Release(tb)
	}
	cycle()
	if n := testing.AllocsPerRun(20, cycle); n != 0 {
		t.Errorf("append/truncate/release cycle allocates %v times", n)
	}
}

func BenchmarkAppendRelease(b *testing.B) {
	c, err := New(Config{Shape: Shape{Layers: 1, KVHeads: 1, HeadSize: 8}, NumBlocks: 1024})
	if err != nil {
		b.Fatal(err)
	}
	tables := make([]*Table, 8)
	for i := range tables {
		tables[i] = &Table{}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, tb := range tables {
			c.Append(tb, 100)
		}
		for _, tb := range tables {
			c.Append(tb, 1)
		}
		for _, tb := range tables {
			c.Release(tb)
		}
	}
}
