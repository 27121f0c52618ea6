package kvindex

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"github.com/kvmesh/kvmesh/blocks"
)

// KeyDomain is the domain tag hashed first into every Seed. A change to the key scheme
// (docs/block-keys.md) changes the tag, so keys of two schemes never meet in one index.
const KeyDomain = "kvmesh/block-key/v1"

// Seed is the parent key of a sequence's first block: SHA-256 over the domain tag, the
// model's identity, the tokenizer's identity and the block size, each string prefixed by
// its length (uint32, little endian) so that no two field lists hash the same bytes, and
// the block size as a uint32 (docs/block-keys.md gives the bytes and test vectors).
//
// modelID names the weights and tokenizerID the vocabulary; the recommended form is
// "sha256:" followed by the lowercase hex SHA-256 of the checkpoint or tokenizer file.
// Every router and worker of one model must pass the same strings. It panics if
// blockSize is not positive or a string is longer than 2^32-1 bytes.
func Seed(modelID, tokenizerID string, blockSize int) blocks.BlockHash {
	if blockSize <= 0 || uint64(blockSize) > 1<<32-1 {
		panic("kvindex: Seed: block size out of range")
	}
	h := sha256.New()
	var b [4]byte
	for _, s := range [...]string{KeyDomain, modelID, tokenizerID} {
		if uint64(len(s)) > 1<<32-1 {
			panic("kvindex: Seed: identity string too long")
		}
		binary.LittleEndian.PutUint32(b[:], uint32(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	binary.LittleEndian.PutUint32(b[:], uint32(blockSize))
	h.Write(b[:])
	var out blocks.BlockHash
	h.Sum(out[:0])
	return out
}

// Keys returns the chained keys of the full blocks of tokens: key i is
// blocks.ChainHash(key i-1, tokens[i*blockSize:(i+1)*blockSize]) with key -1 = seed.
// A trailing partial block has no key. Token ids are hashed as uint32(id). It panics if
// blockSize is not positive.
func Keys(seed blocks.BlockHash, tokens []int, blockSize int) []blocks.BlockHash {
	if blockSize <= 0 {
		panic("kvindex: Keys: block size must be positive")
	}
	return AppendKeys(make([]blocks.BlockHash, 0, len(tokens)/blockSize), seed, tokens, blockSize)
}

// AppendKeys appends the keys that Keys returns to dst and returns the extended slice.
// It allocates nothing when dst has room (a Keyer reuses its state between calls).
func AppendKeys(dst []blocks.BlockHash, seed blocks.BlockHash, tokens []int, blockSize int) []blocks.BlockHash {
	var k Keyer
	return k.AppendKeys(dst, seed, tokens, blockSize)
}

// Keyer computes keys with a reused hash state and buffer, so that a router computing the
// keys of every prompt allocates nothing per call once dst has room. The zero value is
// ready; a Keyer is not safe for concurrent use.
type Keyer struct {
	h      hash.Hash
	buf    []byte           // (blockSize, 4): one block's token ids as little-endian uint32s
	parent blocks.BlockHash // the previous key; a field so that it does not escape per call
}

// AppendKeys is AppendKeys with the Keyer's reused state.
func (k *Keyer) AppendKeys(dst []blocks.BlockHash, seed blocks.BlockHash, tokens []int, blockSize int) []blocks.BlockHash {
	if blockSize <= 0 {
		panic("kvindex: AppendKeys: block size must be positive")
	}
	if k.h == nil {
		k.h = sha256.New()
	}
	if cap(k.buf) < 4*blockSize {
		k.buf = make([]byte, 4*blockSize)
	}
	buf := k.buf[:4*blockSize]
	k.parent = seed
	for i := 0; i+blockSize <= len(tokens); i += blockSize {
		for j, t := range tokens[i : i+blockSize] {
			binary.LittleEndian.PutUint32(buf[4*j:], uint32(t))
		}
		k.h.Reset()
		k.h.Write(k.parent[:])
		k.h.Write(buf)
		k.h.Sum(k.parent[:0])
		dst = append(dst, k.parent)
	}
	return dst
}
