package blocks

import "fmt"

// K/V access, the attention's hot path: no allocation, no copy of a sequence. Write may run
// concurrently with reads of other rows; Scores, AccumV, ReadK and ReadV only read (see the
// package doc).

// Write stores one token's K and V of one layer, k and v (kvHeads·headSize), at (block,
// slot), converting to the cache's DType. block must be held by exactly one table and not
// be in the prefix cache: writing a shared or cached block would change another sequence's
// K/V, so it panics.
func (c *Cache) Write(block, slot, layer int, k, v []float32) {
	if !c.cfg.Mirror && (c.pool.ref[block] != 1 || c.pool.hashed[block]) {
		panic(fmt.Sprintf("blocks: write to block %d with %d references (hashed %v)", block, c.pool.ref[block], c.pool.hashed[block]))
	}
	c.kv.put(block, 0, slot, layer, k)
	c.kv.put(block, 1, slot, layer, v)
}

// Scores sets out[j] = q · K[block, layer, head, j] for j < n, unscaled; q is (headSize),
// out at least (n), n ≤ BlockSize.
func (c *Cache) Scores(out, q []float32, block, layer, head, n int) {
	c.kv.scores(out, q, block, layer, head, n)
}

// AccumV adds Σ_j w[j]·V[block, layer, head, j] for j < n to out (headSize), position by
// position; w is at least (n), n ≤ BlockSize.
func (c *Cache) AccumV(out, w []float32, block, layer, head, n int) {
	c.kv.accumV(out, w, block, layer, head, n)
}

// ReadK writes K[block, layer, head, slot], dequantized, into dst (headSize).
func (c *Cache) ReadK(dst []float32, block, slot, layer, head int) {
	c.kv.get(dst, block, 0, slot, layer, head)
}

// ReadV writes V[block, layer, head, slot], dequantized, into dst (headSize).
func (c *Cache) ReadV(dst []float32, block, slot, layer, head int) {
	c.kv.get(dst, block, 1, slot, layer, head)
}
