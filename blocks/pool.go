package blocks

import "fmt"

// Pool is the bookkeeping of the physical blocks: a reference count per block, the free
// list in eviction order, and the prefix cache (hash → block). It holds no K/V and is a
// plain data structure: no goroutines, no locks; its owner serialises calls.
//
// Every block with reference count 0 is in the free list, and only those. Allocation takes
// the head of the list; dropping the last reference appends at the tail, so the list is
// least-recently-freed first. A hashed block keeps its hash (and its K/V) while it sits in
// the free list; Retain revives it by unlinking it from the middle in O(1), and Alloc
// evicts its hash when it reaches the head and is reused.
type Pool struct {
	ref    []int32     // (numBlocks) references held by block tables
	hash   []BlockHash // (numBlocks) the block's hash, meaningful where hashed
	hashed []bool      // (numBlocks) whether the block is in the prefix cache
	link   []link      // (numBlocks+1) free list; entry numBlocks is the sentinel
	free   int         // length of the free list
	cached map[BlockHash]int32
	record bool    // queue events
	events []Event // pending events, oldest first
}

// link is a node of the intrusive circular doubly linked free list.
type link struct{ prev, next int32 }

// NewPool returns a pool of n blocks, all free, in id order. With recordEvents it queues an
// Event for every hash stored or removed (drained by TakeEvents).
func NewPool(n int, recordEvents bool) *Pool {
	p := &Pool{
		ref:    make([]int32, n),
		hash:   make([]BlockHash, n),
		hashed: make([]bool, n),
		link:   make([]link, n+1),
		cached: make(map[BlockHash]int32),
		record: recordEvents,
	}
	s := int32(n)
	p.link[s] = link{s, s}
	for b := range int32(n) {
		p.pushBack(b)
	}
	return p
}

// NumBlocks is the number of physical blocks.
func (p *Pool) NumBlocks() int { return len(p.ref) }

// NumFree is the number of blocks without references (free, or cached and evictable).
func (p *Pool) NumFree() int { return p.free }

// NumCached is the number of blocks in the prefix cache (live or free).
func (p *Pool) NumCached() int { return len(p.cached) }

// Ref is block b's reference count.
func (p *Pool) Ref(b int) int { return int(p.ref[b]) }

// Alloc takes the block at the head of the free list with one reference, evicting its hash
// if it had one. ok is false when no block is free.
func (p *Pool) Alloc() (b int, ok bool) {
	if p.free == 0 {
		return -1, false
	}
	b32 := p.link[len(p.ref)].next
	p.unlink(b32)
	b = int(b32)
	p.Unhash(b)
	p.ref[b] = 1
	return b, true
}

// Retain takes one more reference to block b; a free block (cached for its hash) leaves the
// free list.
func (p *Pool) Retain(b int) {
	if p.ref[b] == 0 {
		p.unlink(int32(b))
	}
	p.ref[b]++
}

// Drop releases one reference to block b; at zero the block joins the tail of the free list,
// keeping its hash and K/V until it is reused. It panics if b has no reference.
func (p *Pool) Drop(b int) {
	if p.ref[b] <= 0 {
		panic(fmt.Sprintf("blocks: drop of block %d with no reference", b))
	}
	p.ref[b]--
	if p.ref[b] == 0 {
		p.pushBack(int32(b))
	}
}

// SetHash enters block b into the prefix cache under h. A block's hash is set once: setting
// the same hash again is a no-op, a different one panics. It returns false, leaving b
// unhashed, when another block already holds h (the pool keeps one block per hash; b is then
// an ordinary block that is freed without being cached).
func (p *Pool) SetHash(b int, h BlockHash) bool {
	if p.hashed[b] {
		if p.hash[b] != h {
			panic(fmt.Sprintf("blocks: block %d already has hash %x, not %x", b, p.hash[b][:6], h[:6]))
		}
		return true
	}
	if _, dup := p.cached[h]; dup {
		return false
	}
	p.hash[b], p.hashed[b] = h, true
	p.cached[h] = int32(b)
	p.emit(Stored, h, b)
	return true
}

// Hash is block b's hash, if it is in the prefix cache.
func (p *Pool) Hash(b int) (BlockHash, bool) { return p.hash[b], p.hashed[b] }

// Lookup finds the block cached under h. The block may be live or free; Retain it before
// its K/V is used.
func (p *Pool) Lookup(h BlockHash) (b int, ok bool) {
	b32, ok := p.cached[h]
	return int(b32), ok
}

// Unhash removes block b from the prefix cache, if it is there.
func (p *Pool) Unhash(b int) {
	if !p.hashed[b] {
		return
	}
	h := p.hash[b]
	delete(p.cached, h)
	p.hash[b], p.hashed[b] = BlockHash{}, false
	p.emit(Removed, h, b)
}

// TakeEvents appends the pending events to dst, oldest first, and forgets them.
func (p *Pool) TakeEvents(dst []Event) []Event {
	dst = append(dst, p.events...)
	p.events = p.events[:0]
	return dst
}

// FreeList appends the free blocks to dst in eviction order (next to be reused first).
func (p *Pool) FreeList(dst []int) []int {
	s := int32(len(p.ref))
	for b := p.link[s].next; b != s; b = p.link[b].next {
		dst = append(dst, int(b))
	}
	return dst
}

func (p *Pool) emit(k EventKind, h BlockHash, b int) {
	if p.record {
		p.events = append(p.events, Event{Kind: k, Hash: h, Block: b})
	}
}

func (p *Pool) pushBack(b int32) {
	s := int32(len(p.ref))
	last := p.link[s].prev
	p.link[b] = link{prev: last, next: s}
	p.link[last].next = b
	p.link[s].prev = b
	p.free++
}

func (p *Pool) unlink(b int32) {
	l := p.link[b]
	p.link[l.prev].next = l.next
	p.link[l.next].prev = l.prev
	p.link[b] = link{-1, -1}
	p.free--
}

// check verifies the pool on its own: the free list is a consistent cycle holding exactly
// the blocks with reference count 0, each once; no count is negative; the prefix cache and
// the per-block hashes agree.
func (p *Pool) check() error {
	n := len(p.ref)
	seen := make([]bool, n)
	s, count := int32(n), 0
	for prev, b := s, p.link[s].next; b != s; prev, b = b, p.link[b].next {
		switch {
		case b < 0 || int(b) >= n:
			return fmt.Errorf("free list: link to %d out of range", b)
		case seen[b]:
			return fmt.Errorf("free list: block %d twice", b)
		case p.link[b].prev != prev:
			return fmt.Errorf("free list: block %d has prev %d, want %d", b, p.link[b].prev, prev)
		case p.ref[b] != 0:
			return fmt.Errorf("free list: block %d has %d references", b, p.ref[b])
		}
		seen[b] = true
		count++
	}
	if count != p.free {
		return fmt.Errorf("free list: %d blocks linked, %d counted", count, p.free)
	}
	for b, r := range p.ref {
		if r < 0 || (r == 0) != seen[b] {
			return fmt.Errorf("block %d: %d references but in free list = %v", b, r, seen[b])
		}
	}
	hashed := 0
	for b := range n {
		if !p.hashed[b] {
			continue
		}
		hashed++
		if c, ok := p.cached[p.hash[b]]; !ok || int(c) != b {
			return fmt.Errorf("block %d: hash %x maps to block %d (present %v)", b, p.hash[b][:6], c, ok)
		}
	}
	if hashed != len(p.cached) {
		return fmt.Errorf("prefix cache: %d entries, %d hashed blocks", len(p.cached), hashed)
	}
	return nil
}
