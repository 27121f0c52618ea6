package blocks

import "fmt"

// Check verifies every invariant of the cache and returns the first violation: the pool's
// own (free list, prefix cache), each live table's shape, and that every block's reference
// count equals the number of times live tables hold it. Tests run it in t.Cleanup; it is
// O(blocks + table entries) and allocates.
func (c *Cache) Check() error {
	if err := c.pool.check(); err != nil {
		return fmt.Errorf("blocks: pool: %w", err)
	}
	n, bs := c.pool.NumBlocks(), c.cfg.BlockSize
	held := make([]int32, n)
	for t := range c.live {
		switch {
		case t.c != c:
			return fmt.Errorf("blocks: live table %p owned by another cache", t)
		case len(t.Blocks) == 0 || len(t.Blocks) != (t.Len+bs-1)/bs:
			return fmt.Errorf("blocks: table %p holds %d blocks for %d tokens", t, len(t.Blocks), t.Len)
		}
		for _, b := range t.Blocks {
			if b < 0 || b >= n {
				return fmt.Errorf("blocks: table %p holds block %d of %d", t, b, n)
			}
			held[b]++
		}
	}
	for b, r := range c.pool.ref {
		if held[b] != r {
			return fmt.Errorf("blocks: block %d has %d references, tables hold it %d times", b, r, held[b])
		}
	}
	return nil
}

// verify runs Check in Verify mode and panics on a violation: a bug in this package or a
// table misused by its owner.
func (c *Cache) verify() {
	if c.cfg.Verify {
		if err := c.Check(); err != nil {
			panic(err)
		}
	}
}
