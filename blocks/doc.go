// Package blocks is the paged KV cache: a fixed pool of physical blocks, each holding the
// keys and values of BlockSize tokens for every layer this process holds, and a block table
// per sequence that maps its logical blocks to physical ones. Attention reads K and V
// through the table (Cache.Scores, Cache.AccumV); a sequence's cache is never copied into a
// contiguous buffer.
//
// The design follows vLLM v1's block pool (vllm/v1/core/block_pool.py, kv_cache_utils.py):
// a block has an id, a reference count and a hash set once; free blocks sit in an
// intrusive doubly linked list whose order is the eviction order; a prefix hit removes a
// block from the middle of that list in O(1).
//
// # Parts
//
//   - Pool: ids, reference counts, the free list, the prefix cache (hash → block) and its
//     events. A pure data structure.
//   - storage (unexported): the K/V memory of all blocks in one DType, as tiles of one
//     (block, K or V, layer, head) each, so that the rows Scores and AccumV read are one
//     contiguous run. V tiles are (blockSize, headSize). K tiles are transposed,
//     (headSize, blockSize), which departs from the (blockSize, headSize) first sketched:
//     with K[i] of consecutive positions adjacent, Scores sums eight positions in the
//     lanes of one AVX2 register, each still in run.c's order; measured on 512 positions
//     of head size 64 (BenchmarkAttend, CPU time per position) that took Scores+AccumV
//     from 57-82 ns to 9-16 ns for fp32, and from 80-270 ns to 11-26 ns for fp16, int8
//     and int4 (the machine was shared; CPU time, not wall time). Int8 and Int4
//     carry one fp32 scale per (block, K/V, layer, head, slot), i.e. per token and head,
//     so a block is never requantized as it fills.
//   - Cache: Pool + storage + the operations on tables: Append, Fork, Release, Truncate,
//     and the prefix cache's SetHash, Lookup, AppendCached, AppendPrefix.
//   - Raw block bytes for the disk tier: ExportBlock and ImportBlock move one block's K/V
//     (and scales) out and back bit-identical; FreeCached lists the evictable cached blocks
//     coldest first, and Uncache drops a hash whose block now lives on disk.
//
// # Invariants (Cache.Check verifies them; tests run it after every test)
//
//   - A block's reference count is the number of times live tables hold it. The prefix
//     cache holds no reference: a cached block with no table is free (evictable).
//   - The free list holds exactly the blocks with reference count 0, each once, ordered for
//     eviction: Alloc takes the head; a block whose count drops to 0 joins the tail. Tables
//     are released last block first, so a sequence's tail is evicted before its head.
//   - A hashed block is full and its K/V are what the hash names: it is never written
//     (Write panics); a table that was truncated into it copies it before writing if it is
//     shared, or takes its hash out of the cache if it is not. One block per hash.
//   - len(t.Blocks) = ⌈t.Len/BlockSize⌉ for every table. A block is written only while one
//     table holds it: appending into a shared, partly filled block copies it first.
//   - No leak: when every table has been released, NumFree() = NumBlocks().
//   - Append is all or nothing. Running out of blocks is a normal answer (false), on which
//     the scheduler preempts; it is not an error.
//
// Config.Verify (or KVMESH_VERIFY=1 in the environment) runs Check after every table
// operation and panics on the first violation.
//
// # Threading contract
//
// Nothing in this package locks or starts goroutines. The table and pool operations
// (Append, AppendCached, AppendPrefix, Fork, Release, Truncate, SetHash, Lookup, Uncache,
// FreeCached, TakeEvents, Check, BlocksNeeded, NumFree) change or read shared bookkeeping
// and must be serialised by the owner, and must not run while KV access is in progress.
//
// The KV access methods (Write, Scores, AccumV, ReadK, ReadV, ExportBlock, ImportBlock)
// keep no shared scratch state: any number of goroutines may call them at once, as long
// as nothing writes (Write, ImportBlock) memory that another concurrent call reads or
// writes. Write touches the rows of one (block, slot, layer) and nothing of other slots,
// not even in packed int4 bytes; ImportBlock a whole block. In particular the model's
// attention may run Scores and AccumV for different heads and tokens on several
// goroutines once the step's Writes are done.
//
// # Numerics
//
// FP32 is exact: Scores is one dot product per position, summed in index order with every
// product rounded to fp32 (no FMA), and AccumV adds w[j]·V[j] position by position, as
// llama2.c's run.c does, so fp32 greedy decoding matches it token for token. FP16 rounds to
// nearest even (relative error ≤ 2^-11 for normal values); Int8 is symmetric in [-127, 127]
// (error ≤ maxabs/254 per element, maxabs over that token's head); Int4 is symmetric in
// [-7, 7], never using -8, so that 0 is exact and the error bound is simply maxabs/14.
// Int8/Int4 dequantize on the fly: Scores multiplies the integer dot product by the row's
// scale once. Inputs to Int8/Int4 must be finite.
//
// On amd64 with AVX2 (and F16C) the kernels of every type are assembly generated by
// gen_kernels.go: separate multiplies and adds (no FMA), lanes across positions for
// Scores and across elements for AccumV, so every result equals the portable Go kernel's
// bit for bit (tested on both paths). Elsewhere the portable kernels run.
package blocks
