package blocks

import (
	"slices"
	"testing"
)

func checkedPool(t *testing.T, n int) *Pool {
	t.Helper()
	p := NewPool(n, true)
	t.Cleanup(func() {
		if err := p.check(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p
}

func hashOf(i byte) BlockHash { return BlockHash{i, 0xee} }

func TestPoolEvictionOrder(t *testing.T) {
	p := checkedPool(t, 4)
	if got := p.FreeList(nil); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("initial free list %v", got)
	}
	a, _ := p.Alloc()
	b, _ := p.Alloc()
	c, _ := p.Alloc()
	if a != 0 || b != 1 || c != 2 {
		t.Fatalf("allocated %d %d %d, want 0 1 2", a, b, c)
	}
	// Freed blocks join the tail, behind the never-used block 3.
	p.Drop(c)
	p.Drop(a)
	if got := p.FreeList(nil); !slices.Equal(got, []int{3, 2, 0}) {
		t.Fatalf("free list %v, want [3 2 0]", got)
	}
	p.Retain(b)
	p.Drop(b)
	if p.Ref(b) != 1 || p.NumFree() != 3 {
		t.Fatalf("ref %d free %d", p.Ref(b), p.NumFree())
	}
	// Retaining a free block unlinks it from the middle.
	p.Retain(2)
	if got := p.FreeList(nil); !slices.Equal(got, []int{3, 0}) {
		t.Fatalf("free list %v after retaining 2, want [3 0]", got)
	}
	for _, want := range []int{3, 0} {
		if got, ok := p.Alloc(); !ok || got != want {
			t.Fatalf("Alloc = %d, %v; want %d", got, ok, want)
		}
	}
	if got, ok := p.Alloc(); ok {
		t.Fatalf("Alloc from an empty pool = %d", got)
	}
	for _, b := range []int{0, 1, 2, 3} {
		p.Drop(b)
	}
	if p.NumFree() != p.NumBlocks() {
		t.Fatalf("%d of %d free", p.NumFree(), p.NumBlocks())
	}
}

func TestPoolPrefixCache(t *testing.T) {
	p := checkedPool(t, 3)
	b0, _ := p.Alloc()
	b1, _ := p.Alloc()
	if !p.SetHash(b0, hashOf(1)) || !p.SetHash(b0, hashOf(1)) {
		t.Fatal("SetHash refused a new hash or its repetition")
	}
	if p.SetHash(b1, hashOf(1)) {
		t.Fatal("SetHash accepted a hash another block holds")
	}
	if _, ok := p.Hash(b1); ok {
		t.Fatal("refused block got a hash")
	}
	p.Drop(b0) // free but cached
	if got, ok := p.Lookup(hashOf(1)); !ok || got != b0 {
		t.Fatalf("Lookup = %d, %v; want %d", got, ok, b0)
	}
	// Reviving a cached free block.
	p.Retain(b0)
	if p.NumFree() != 1 || p.Ref(b0) != 1 {
		t.Fatalf("free %d ref %d after revival", p.NumFree(), p.Ref(b0))
	}
	p.Drop(b0)
	p.Drop(b1)
	// Free list is now [2, b0, b1]: allocating two reaches b0 and evicts its hash.
	p.Alloc()
	if got, _ := p.Alloc(); got != b0 {
		t.Fatalf("allocated %d, want %d", got, b0)
	}
	if _, ok := p.Lookup(hashOf(1)); ok || p.NumCached() != 0 {
		t.Fatal("evicted block still cached")
	}
	want := []Event{{Stored, hashOf(1), b0}, {Removed, hashOf(1), b0}}
	if got := p.TakeEvents(nil); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if got := p.TakeEvents(nil); len(got) != 0 {
		t.Fatalf("events after taking them: %v", got)
	}
	p.Drop(2)
	p.Drop(b0)
}

func TestPoolPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(p *Pool)
	}{
		{"drop a free block", func(p *Pool) { p.Drop(0) }},
		{"rehash", func(p *Pool) {
			b, _ := p.Alloc()
			p.SetHash(b, hashOf(1))
			p.SetHash(b, hashOf(2))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f(NewPool(2, false))
		})
	}
}

func TestPoolNoEventsUnlessRecorded(t *testing.T) {
	p := NewPool(1, false)
	b, _ := p.Alloc()
	p.SetHash(b, hashOf(3))
	p.Unhash(b)
	if ev := p.TakeEvents(nil); len(ev) != 0 {
		t.Fatalf("events %v", ev)
	}
}

func TestPoolCheckCatchesCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(p *Pool)
	}{
		{"reference on a free block", func(p *Pool) { p.ref[1] = 1 }},
		{"free count", func(p *Pool) { p.free++ }},
		{"broken prev link", func(p *Pool) { p.link[2].prev = 0 }},
		{"cycle", func(p *Pool) { p.link[2].next = 1 }},
		{"live block not in list", func(p *Pool) { p.unlink(1) }},
		{"stale cache entry", func(p *Pool) { p.cached[hashOf(9)] = 0 }},
		{"hash without entry", func(p *Pool) { p.hashed[0] = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPool(3, false)
			tc.corrupt(p)
			if err := p.check(); err == nil {
				t.Error("check passed")
			}
		})
	}
}
