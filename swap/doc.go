// Package swap is the disk tier of the KV cache: a Store keeps KV blocks,
// each an opaque payload under a 32-byte Key with a small Meta, in one bbolt
// file per worker, checksummed, and reopens the file after a restart so that
// cached prefixes serve hits again (a warm restart).
//
// The store holds no policy. Which blocks to write out (the coldest ones not
// needed by the step being run, once resident memory passes the high
// watermark, until it is under the low one), when to prefetch, and which
// disk entries to delete when the tier is full belong to the engine, which
// builds them from Put/PutBatch, GetBatch (called ahead of the step, from
// any goroutine), DeleteBatch, Range and Stats:
//
//   - swap out: PutBatch of the chosen blocks, one transaction and one fsync
//     for the lot; on ErrFull keep them in memory or drop them (they are
//     recomputed) and, if the disk tier has its own LRU, DeleteBatch its
//     coldest entries and retry.
//   - swap in / prefix hit on disk: GetBatch into block-sized buffers; an
//     entry with Err == ErrNotFound or ErrCorrupt is recomputed.
//   - warm restart: Open, then Range to rebuild the prefix index from each
//     entry's Meta (Parent chains the prefix; Tokens are the block's ids);
//     delete the KindPrivate entries, which belong to sequences of the dead
//     process.
//
// # Invariants
//
//   - A block is served bit-identical or not at all. Every value carries
//     two CRC-32C checksums: one over key ‖ header ‖ meta, one over the
//     payload. Get checks both on every read; a mismatch returns ErrCorrupt,
//     deletes the entry, counts it in Stats.Corrupt and logs a Warn line.
//     The key is inside the first checksum, so a value that ends up under
//     the wrong key is corrupt too.
//   - A write is all or nothing: PutBatch is one bbolt transaction; on
//     ErrFull (Config.MaxBytes, or ENOSPC/EDQUOT from the file system) the
//     transaction rolls back and no entry of the batch is stored. The store
//     stays usable: Gets serve, Deletes work (DeleteBatch splits itself into
//     smaller transactions on a full disk, since bbolt needs free pages to
//     delete), and Puts succeed again once there is room.
//   - Stats.Entries and Stats.StoredBytes equal the committed file's content
//     (writes are serialised by one mutex and the counters move only after a
//     commit). Config.MaxBytes bounds StoredBytes.
//   - The file is never read under another identity: Open sets aside a file
//     written for another Identity or another format version, and a corrupt
//     one, by renaming it (Path+".foreign-<unix>" / ".corrupt-<unix>") with a
//     Warn line giving the reason and the new name, then starts a fresh file.
//     Errors that say nothing about the content (permissions, the lock held
//     by another process: bbolt takes an flock) set nothing aside. Only the
//     newest Config.KeepSetAside set-aside files are kept (default 1), so a
//     crash loop cannot fill the swap volume with copies.
//
// # Concurrency
//
// A Store is safe for concurrent use. Reads (Get, GetBatch, Range) run in
// bbolt read transactions in parallel with each other and with one writer.
// Writes (Put, PutBatch, Delete, DeleteBatch, and the deletion of corrupt
// entries) are serialised by Store.mu, around bbolt's own writer lock. The
// callback of Range runs inside a read transaction and must not call the
// Store (a write could deadlock on bbolt's remap lock).
//
// # File layout (format version 1)
//
// A bbolt file with exactly two top-level buckets:
//
//	"meta"    "format"   uint32 LE = 1
//	          "identity" Config.Identity, raw bytes
//	          "created"  int64 LE, unix nanoseconds when the file was made
//	"blocks"  one bucket per entry, named by its 32-byte Key, holding one key:
//	          "v"  the stored value: header ‖ meta ‖ payload, little endian:
//
//	  header (16 bytes)
//	    0   u8   format version = 1
//	    1   u8   flags, 0
//	    2   u16  M, meta length in bytes (= 38 + 4n)
//	    4   u32  P, payload length in bytes
//	    8   u32  CRC-32C (Castagnoli) of key(32) ‖ header[0:8] ‖ meta
//	    12  u32  CRC-32C of payload
//	  meta (M bytes)
//	    0   [32] parent Key (zero if none)
//	    32  u8   kind (0 prefix, 1 private)
//	    33  u8   dtype, opaque engine tag of the in-memory type
//	    34  u8   encoding (0 raw, 1 int8: see EncodeInt8)
//	    35  u8   reserved, 0
//	    36  u16  n, number of tokens
//	    38  n × int32 token ids
//	  payload (P bytes)
//
// A value is valid when its length is exactly 16 + M + P and both checksums
// hold. An entry bucket without "v", or a plain value directly under a key
// of "blocks", is a corrupt entry. The entry buckets are there because bbolt
// keeps two to four keys in a leaf page: with values directly in "blocks",
// every write rewrote the one to three blocks sharing its leaf (3.2 blocks
// written per 1.18 MB block stored, measured); alone in its own bucket's
// leaf, a value is written once (1.02), and deleting one on a full disk
// needs no room for a neighbour's copy. The int8 encoding of a payload is, per group of g values: a float32
// LE scale, then g int8 values (the last group may be shorter); value =
// int8 × scale.
//
// # Checksum: CRC-32C, not SHA-256
//
// The checksum guards against bit rot, torn or misdirected writes and bad
// reads, not against an adversary who can write the file (who could rewrite
// any checksum). CRC-32C detects every burst of up to 32 bits and all
// odd-weight errors, and with the SSE4.2 instruction runs at 12–13 GB/s
// against SHA-256's 0.26–0.87 GB/s on this machine (BenchmarkChecksum,
// docs/benchmarks-swap.md): on a 1.18 MB block 0.09 ms against 4.6 ms,
// which would dominate a swap-in.
//
// # Corruption and bbolt panics (caveats)
//
// bbolt detects damage to its meta pages (checksummed, with a fallback to
// the second meta page) but trusts the branch, leaf and freelist pages, and
// panics — or faults on the mapped file — on some damaged ones. The store
// runs every bbolt call under recover with debug.SetPanicOnFault, so such a
// panic becomes an error wrapping ErrCorrupt instead of a crash. Open walks
// every page of the blocks bucket (a cursor over all entries, checking each
// header checksum), so a damaged tree is found at Open and the file set
// aside; entries with a bad header are dropped one by one. tx.Check is not
// used: it runs in a goroutine of its own, where a panic on a damaged page
// could not be recovered. Consequences:
//   - damage bbolt finds only later (a freelist that hands out a page still
//     in use) shows up as checksum failures of the entries involved, which
//     are dropped; a panic after Open logs an Error line, sets
//     Stats.Damaged and returns ErrCorrupt (the worker keeps serving by
//     recomputing); Close and Open the store again to set the file aside.
//   - when bbolt panics inside its own Open it leaves the file descriptor
//     and lock of the damaged file open (it cannot clean up); the file is
//     renamed anyway and the fresh file is a new inode, so this costs one
//     descriptor per such event.
//
// # Memory and address space
//
// bbolt holds the values of a write transaction until it commits, so
// PutBatch needs the encoded batch in memory (a buffer kept between calls up
// to 8 MiB, allocated per call above that) and bbolt allocates the pages it
// writes: a batch of n payload bytes makes about 2n of short-lived garbage.
// Swap out in batches of a few MB, not hundreds. The file is mapped with
// room for the whole tier up front (MaxBytes + 25%, 4 GiB if unbounded):
// address space only, but it spares the remap that would make a growing
// file wait for every reader and copy every dirty value.
//
// # Durability
//
// By default (NoSync false) every write transaction ends with fdatasync, so
// an acknowledged Put survives power loss. Since the tier is a cache, a
// worker may set NoSync: a process crash still loses nothing, a machine
// crash may leave a file that Open sets aside (a cold restart, never a wrong
// block). Batching is what matters most: a batch of 32 stories260K blocks
// costs about one fsync, as much as a single Put (see the benchmarks).
package swap
