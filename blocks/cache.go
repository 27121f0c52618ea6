package blocks

import (
	"fmt"
	"slices"
)

// Table is one sequence's view of the cache: the physical block of each logical block and
// the number of tokens held. Position p lives in Blocks[p/BlockSize] at slot p%BlockSize,
// and len(Blocks) is always ⌈Len/BlockSize⌉. A Table is bound to the Cache that first gives
// it room; only that Cache changes it, and it must not be copied by value while it holds
// blocks (Fork makes a second table).
type Table struct {
	Blocks []int // (⌈Len/BlockSize⌉) physical block ids
	Len    int   // tokens held, written or reserved by Append

	c *Cache // owner, set on first use
}

// Slot is where position pos (0 ≤ pos < Len) lives: physical block and slot within it.
func (t *Table) Slot(pos int) (block, slot int) {
	if uint(pos) >= uint(t.Len) {
		panic(fmt.Sprintf("blocks: position %d outside table of %d tokens", pos, t.Len))
	}
	bs := t.c.cfg.BlockSize
	return t.Blocks[pos/bs], pos % bs
}

// Cache is the paged KV cache of one process: a Pool of blocks, their K/V storage, and the
// operations on block tables. See the package doc for the invariants and the threading
// contract.
type Cache struct {
	cfg    Config
	pool   *Pool
	kv     *storage
	live   map[*Table]struct{} // tables holding at least one block, for Check
	copies []Copy              // copy-on-write copies not yet taken (Config.RecordCopies)
}

// New allocates a cache of cfg.NumBlocks blocks. Errors wrap ErrBadConfig or
// ErrUnknownDType.
func New(cfg Config) (*Cache, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Cache{
		cfg:  cfg,
		pool: NewPool(cfg.NumBlocks, cfg.RecordEvents),
		kv:   newStorage(cfg.Shape, cfg.DType, cfg.NumBlocks),
		live: make(map[*Table]struct{}),
	}, nil
}

// Config is the configuration the cache runs with, defaults filled in.
func (c *Cache) Config() Config { return c.cfg }

// BlockSize is the number of tokens per block.
func (c *Cache) BlockSize() int { return c.cfg.BlockSize }

// NumBlocks is the number of physical blocks.
func (c *Cache) NumBlocks() int { return c.pool.NumBlocks() }

// NumFree is the number of blocks no table refers to (some of them cached for a prefix).
func (c *Cache) NumFree() int { return c.pool.NumFree() }

// NumCached is the number of blocks in the prefix cache, live or free.
func (c *Cache) NumCached() int { return c.pool.NumCached() }

// own binds t to c on first use and panics if t belongs to another cache.
func (c *Cache) own(t *Table) {
	switch t.c {
	case c:
	case nil:
		t.c = c
	default:
		panic("blocks: table used with a cache that does not own it")
	}
}

// track records whether t holds blocks, for Check.
func (c *Cache) track(t *Table) {
	if len(t.Blocks) > 0 {
		c.live[t] = struct{}{}
	} else {
		delete(c.live, t)
	}
}

// cow reports whether appending to t writes into a block shared with another table: its
// last block is partly filled and has more than one reference.
func (c *Cache) cow(t *Table) bool {
	return t.Len%c.cfg.BlockSize != 0 && c.pool.Ref(t.Blocks[len(t.Blocks)-1]) > 1
}

// BlocksNeeded is how many free blocks Append(t, n) takes: new blocks for the positions
// past the last block, plus one if the partly filled last block is shared (copy on write).
func (c *Cache) BlocksNeeded(t *Table, n int) int {
	if n <= 0 {
		return 0
	}
	bs := c.cfg.BlockSize
	need := (t.Len+n+bs-1)/bs - len(t.Blocks)
	if c.cow(t) {
		need++
	}
	return need
}

// Append makes room for n more tokens, positions t.Len .. t.Len+n-1, and advances t.Len.
// It allocates blocks as the table grows; if the partly filled last block is shared, it
// first copies that block into a fresh one (copy on write), and if it is t's alone but
// hashed (after a Truncate), it takes the hash out of the prefix cache, since the new
// tokens overwrite what the hash named. All or nothing: when the pool lacks
// BlocksNeeded(t, n) free blocks, Append changes nothing and returns false.
func (c *Cache) Append(t *Table, n int) bool {
	if n < 0 {
		panic(fmt.Sprintf("blocks: append of %d tokens", n))
	}
	c.own(t)
	if n == 0 {
		return true
	}
	if c.BlocksNeeded(t, n) > c.pool.NumFree() {
		return false
	}
	bs := c.cfg.BlockSize
	if t.Len%bs != 0 {
		i := len(t.Blocks) - 1
		if last := t.Blocks[i]; c.pool.Ref(last) > 1 {
			fresh, _ := c.pool.Alloc()
			c.kv.copyBlock(fresh, last)
			if c.cfg.RecordCopies {
				c.copies = append(c.copies, Copy{Dst: fresh, Src: last})
			}
			c.pool.Drop(last)
			t.Blocks[i] = fresh
		} else {
			c.pool.Unhash(last)
		}
	}
	for want := (t.Len + n + bs - 1) / bs; len(t.Blocks) < want; {
		b, _ := c.pool.Alloc()
		t.Blocks = append(t.Blocks, b)
	}
	t.Len += n
	c.track(t)
	c.verify()
	return true
}

// Fork returns a new table sharing every block of t (one more reference each), for another
// sample of the same prompt. Neither table copies anything until it appends into a shared,
// partly filled block.
func (c *Cache) Fork(t *Table) *Table {
	c.own(t)
	f := &Table{Blocks: slices.Clone(t.Blocks), Len: t.Len, c: c}
	for _, b := range f.Blocks {
		c.pool.Retain(b)
	}
	c.track(f)
	c.verify()
	return f
}

// Release drops every reference t holds, last block first, so that a sequence's tail is
// evicted before its head; t becomes empty and may be reused.
func (c *Cache) Release(t *Table) {
	c.Truncate(t, 0)
}

// Truncate keeps the first n tokens of t (0 ≤ n ≤ t.Len) and drops the blocks past them,
// last first. The kept tokens' K/V are untouched.
func (c *Cache) Truncate(t *Table, n int) {
	if n < 0 || n > t.Len {
		panic(fmt.Sprintf("blocks: truncate to %d of a table of %d tokens", n, t.Len))
	}
	c.own(t)
	bs := c.cfg.BlockSize
	keep := (n + bs - 1) / bs
	for i := len(t.Blocks) - 1; i >= keep; i-- {
		c.pool.Drop(t.Blocks[i])
	}
	t.Blocks = t.Blocks[:keep]
	t.Len = n
	c.track(t)
	c.verify()
}
