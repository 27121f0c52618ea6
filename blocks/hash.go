package blocks

import (
	"crypto/sha256"
	"encoding/binary"
)

// BlockHash names the content of one full block: SHA-256 over the parent block's hash and
// the block's token ids (ChainHash), so equal hashes mean equal prefixes up to and
// including the block. 32 bytes rather than a uint64 because the router compares hashes
// from many nodes and a collision would silently serve another prompt's K/V.
type BlockHash [32]byte

// ChainHash is the hash of a block holding tokens whose predecessor block has hash parent.
// The first block of a sequence takes the zero BlockHash as parent (or a salt, such as a
// hash of the model's identity, when caches of different models share an index). Tokens
// are hashed as little-endian uint32s, so the result is the same on every machine.
func ChainHash(parent BlockHash, tokens []int) BlockHash {
	var stack [len(parent) + 4*64]byte // no allocation for blocks up to 64 tokens
	buf := append(stack[:0], parent[:]...)
	for _, t := range tokens {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t))
	}
	return sha256.Sum256(buf)
}

// EventKind says what happened to a block hash.
type EventKind uint8

const (
	// Stored: the hash entered the prefix cache (SetHash).
	Stored EventKind = iota + 1
	// Removed: the hash left the prefix cache (its block was evicted for reuse, or was about
	// to be overwritten after a Truncate).
	Removed
)

func (k EventKind) String() string {
	switch k {
	case Stored:
		return "stored"
	case Removed:
		return "removed"
	}
	return "EventKind(?)"
}

// Event is a change of the prefix cache, for the router's prefix index.
type Event struct {
	Kind  EventKind
	Hash  BlockHash
	Block int // physical block that holds (held) the hash
}
