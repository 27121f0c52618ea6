package blocks

import "fmt"

// View returns a table over block ids that another cache allocated (see Config.Mirror):
// position p lives in ids[p/BlockSize] at slot p%BlockSize, and the table holds n tokens.
// The table shares ids; it is only read and written through, never appended, forked or
// released.
func (c *Cache) View(ids []int, n int) *Table {
	if !c.cfg.Mirror {
		panic("blocks: View on a cache that is not a mirror")
	}
	bs := c.cfg.BlockSize
	if n < 0 || (n+bs-1)/bs != len(ids) {
		panic(fmt.Sprintf("blocks: view of %d tokens over %d blocks of %d", n, len(ids), bs))
	}
	for _, b := range ids {
		if b < 0 || b >= c.NumBlocks() {
			panic(fmt.Sprintf("blocks: view names block %d of %d", b, c.NumBlocks()))
		}
	}
	return &Table{Blocks: ids, Len: n, c: c}
}

// CopyBlock copies block src's K/V over block dst: a mirror repeats the copy-on-write
// copies of the cache it mirrors.
func (c *Cache) CopyBlock(dst, src int) {
	if !c.cfg.Mirror {
		panic("blocks: CopyBlock on a cache that is not a mirror (Append copies on write itself)")
	}
	c.kv.copyBlock(dst, src)
}

// Copy is one copy-on-write copy: block Src's K/V copied over block Dst.
type Copy struct{ Dst, Src int }

// TakeCopies appends the copy-on-write copies made since the last call
// (Config.RecordCopies), oldest first, to dst, and forgets them.
func (c *Cache) TakeCopies(dst []Copy) []Copy {
	dst = append(dst, c.copies...)
	c.copies = c.copies[:0]
	return dst
}
