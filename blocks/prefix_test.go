package blocks

import (
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestChainHash(t *testing.T) {
	var root BlockHash
	h := ChainHash(root, []int{1, 2, 300})
	want := sha256.Sum256(append(make([]byte, 32), 1, 0, 0, 0, 2, 0, 0, 0, 44, 1, 0, 0))
	if h != want {
		t.Fatalf("ChainHash = %x, want %x", h, want)
	}
	tokens := make([]int, 64)
	if n := testing.AllocsPerRun(10, func() { ChainHash(h, tokens) }); n != 0 {
		t.Errorf("ChainHash of 64 tokens allocates %v times", n)
	}
	for _, other := range []BlockHash{
		ChainHash(root, []int{2, 1, 300}),
		ChainHash(root, []int{1, 2}),
		ChainHash(h, []int{1, 2, 300}),
	} {
		if other == h {
			t.Fatalf("distinct blocks share hash %x", h)
		}
	}
}

// fill appends n tokens to tb and writes K = V = a distinct random vector per token and
// layer; it returns what was written, (n, layers) vectors of kvHeads·headSize.
func fill(t *testing.T, c *Cache, tb *Table, n int, rng *rand.Rand) [][][]float32 {
	t.Helper()
	start := tb.Len
	if !c.Append(tb, n) {
		t.Fatalf("Append(%d) failed with %d free", n, c.NumFree())
	}
	kvDim := c.cfg.KVHeads * c.cfg.HeadSize
	out := make([][][]float32, n)
	for i := range out {
		b, s := tb.Slot(start + i)
		for l := range c.cfg.Layers {
			x := randVec(rng, kvDim, 1)
			c.Write(b, s, l, x, x)
			out[i] = append(out[i], x)
		}
	}
	return out
}

// readBlock reads K of every slot, layer and head of block b.
func readBlock(c *Cache, b int) []float32 {
	hs := c.cfg.HeadSize
	var out []float32
	row := make([]float32, hs)
	for s := range c.cfg.BlockSize {
		for l := range c.cfg.Layers {
			for h := range c.cfg.KVHeads {
				c.ReadK(row, b, s, l, h)
				out = append(out, row...)
			}
		}
	}
	return out
}

func TestPrefixRevival(t *testing.T) {
	c := newTestCache(t, testConfig(4, FP32))
	rng := rand.New(rand.NewPCG(5, 6))
	bs := c.BlockSize()
	a := &Table{}
	fill(t, c, a, 2*bs+1, rng)
	h0, h1 := hashOf(1), hashOf(2)
	if !c.SetHash(a, 0, h0) || !c.SetHash(a, 1, h1) {
		t.Fatal("SetHash failed")
	}
	b0, b1 := a.Blocks[0], a.Blocks[1]
	content0, content1 := readBlock(c, b0), readBlock(c, b1)

	// A second table with the same prefix shares the live blocks.
	b := &Table{}
	if n := c.AppendPrefix(b, []BlockHash{h0, h1, hashOf(3)}); n != 2 {
		t.Fatalf("AppendPrefix = %d, want 2", n)
	}
	if !slices.Equal(b.Blocks, []int{b0, b1}) || b.Len != 2*bs || c.pool.Ref(b0) != 2 {
		t.Fatalf("revived table %+v, ref %d", b, c.pool.Ref(b0))
	}
	c.Release(b)

	// Released, the hashed blocks stay cached in the free list, tail first.
	c.Release(a)
	if got := c.pool.FreeList(nil); !slices.Equal(got, []int{3, 2, b1, b0}) {
		t.Fatalf("free list %v", got)
	}
	if c.NumCached() != 2 {
		t.Fatalf("%d cached", c.NumCached())
	}
	b = &Table{}
	if n := c.AppendPrefix(b, []BlockHash{h0, h1}); n != 2 || c.NumFree() != 2 {
		t.Fatalf("AppendPrefix = %d with %d free", n, c.NumFree())
	}
	if !slices.Equal(readBlock(c, b.Blocks[0]), content0) || !slices.Equal(readBlock(c, b.Blocks[1]), content1) {
		t.Fatal("revived blocks lost their K/V")
	}
	c.Truncate(b, bs) // b1 back to the tail; b0 stays
	// Allocating three blocks reaches b1 and evicts its hash.
	d := &Table{}
	fill(t, c, d, 3*bs, rng)
	if _, ok := c.Lookup(h1); ok {
		t.Fatal("evicted block still found")
	}
	if got, ok := c.Lookup(h0); !ok || got != b0 {
		t.Fatal("live cached block lost")
	}
	want := []Event{{Stored, h0, b0}, {Stored, h1, b1}, {Removed, h1, b1}}
	if got := c.TakeEvents(nil); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	c.Release(b)
	c.Release(d)
}

// TestTruncateIntoHashedBlock: a table cut back into its own hashed block un-hashes it when
// it appends (the new token overwrites what the hash named); a shared one is copied and
// stays cached.
func TestTruncateIntoHashedBlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, shared := range []bool{false, true} {
		c := newTestCache(t, testConfig(4, FP32))
		bs := c.BlockSize()
		a := &Table{}
		fill(t, c, a, bs, rng)
		c.SetHash(a, 0, hashOf(1))
		orig := a.Blocks[0]
		content := readBlock(c, orig)
		var f *Table
		if shared {
			f = c.Fork(a)
		}
		c.Truncate(a, bs-1)
		if got := c.BlocksNeeded(a, 1); got != map[bool]int{false: 0, true: 1}[shared] {
			t.Fatalf("shared %v: BlocksNeeded %d", shared, got)
		}
		fill(t, c, a, 1, rng)
		_, cached := c.Lookup(hashOf(1))
		if cached != shared || (a.Blocks[0] != orig) != shared {
			t.Fatalf("shared %v: cached %v, block %d (was %d)", shared, cached, a.Blocks[0], orig)
		}
		if shared && !slices.Equal(readBlock(c, orig), content) {
			t.Fatal("cached block changed")
		}
		c.Release(a)
		if f != nil {
			c.Release(f)
		}
	}
}

func TestSetHashDuplicate(t *testing.T) {
	c := newTestCache(t, testConfig(4, FP32))
	rng := rand.New(rand.NewPCG(9, 10))
	a, b := &Table{}, &Table{}
	fill(t, c, a, 4, rng)
	fill(t, c, b, 4, rng)
	if !c.SetHash(a, 0, hashOf(1)) || c.SetHash(b, 0, hashOf(1)) {
		t.Fatal("want the first block to win the hash")
	}
	if _, ok := c.Hash(b.Blocks[0]); ok {
		t.Fatal("duplicate got a hash")
	}
	c.Release(a)
	c.Release(b)
	if c.NumCached() != 1 || c.NumFree() != 4 {
		t.Fatalf("%d cached, %d free", c.NumCached(), c.NumFree())
	}
}
