package blocks

import "fmt"

// Prefix caching, as in vLLM v1: a full block can be named by its BlockHash; when its last
// reference goes the block stays in the prefix cache, K/V intact, at the tail of the free
// list, until allocation reaches it and reuses it. A new sequence with the same prefix
// revives it instead of recomputing it.

// SetHash names logical block i of t, which must be full, with h, and enters it into the
// prefix cache. Call it once the K/V of all the block's tokens are written. It returns
// false when another block already holds h (t's block then stays an ordinary block). A
// block's hash is set once; setting a different one panics.
func (c *Cache) SetHash(t *Table, i int, h BlockHash) bool {
	c.own(t)
	if i < 0 || (i+1)*c.cfg.BlockSize > t.Len {
		panic(fmt.Sprintf("blocks: hash of block %d, not full in a table of %d tokens", i, t.Len))
	}
	ok := c.pool.SetHash(t.Blocks[i], h)
	c.verify()
	return ok
}

// Hash is the hash of physical block b, if it is in the prefix cache.
func (c *Cache) Hash(b int) (BlockHash, bool) { return c.pool.Hash(b) }

// Lookup finds the block cached under h, live or free. AppendCached takes it.
func (c *Cache) Lookup(h BlockHash) (block int, ok bool) { return c.pool.Lookup(h) }

// AppendCached appends the cached, full block to t, whose length must be a multiple of
// BlockSize, taking a reference (a free block leaves the free list, so it is no longer
// evictable). t.Len grows by BlockSize. It needs no free block and cannot fail.
func (c *Cache) AppendCached(t *Table, block int) {
	c.own(t)
	if t.Len%c.cfg.BlockSize != 0 {
		panic(fmt.Sprintf("blocks: cached block appended to a table of %d tokens, not whole blocks", t.Len))
	}
	if _, ok := c.pool.Hash(block); !ok {
		panic(fmt.Sprintf("blocks: block %d appended as cached but has no hash", block))
	}
	c.pool.Retain(block)
	t.Blocks = append(t.Blocks, block)
	t.Len += c.cfg.BlockSize
	c.track(t)
	c.verify()
}

// AppendPrefix appends to t (of whole blocks) the cached blocks of hashes, in order, up to
// the first that is not cached, and returns how many it appended.
func (c *Cache) AppendPrefix(t *Table, hashes []BlockHash) int {
	for i, h := range hashes {
		b, ok := c.pool.Lookup(h)
		if !ok {
			return i
		}
		c.AppendCached(t, b)
	}
	return len(hashes)
}

// TakeEvents appends the prefix cache's pending events (Config.RecordEvents) to dst, oldest
// first, and forgets them.
func (c *Cache) TakeEvents(dst []Event) []Event { return c.pool.TakeEvents(dst) }
