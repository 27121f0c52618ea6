package swap

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
)

// Key is a block's identity in the store, and its bbolt key (32 bytes).
//
// Two uses, which never collide because the engine draws private ids from a
// separate space (for example a hash with a distinct domain prefix):
//   - a cached prefix block: its chained prefix hash, i.e. the hash of the
//     parent block's hash and this block's token ids. Such a block is
//     shareable, survives a restart, and Meta.Parent names its parent.
//   - a private block of a running sequence (a partial tail block, or a
//     block swapped out while its sequence is preempted): an id the engine
//     makes. Such entries are meaningful only to the process that wrote
//     them; on a warm restart the engine deletes the KindPrivate entries
//     Range reports.
type Key [32]byte

// String returns the key in hex, for logs.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Kind says which of the two uses of Key an entry has.
type Kind uint8

const (
	KindPrefix  Kind = 0 // a cached prefix block, keyed by its chained prefix hash
	KindPrivate Kind = 1 // a private block of one running sequence, keyed by an engine id
)

// Encoding says how a payload is stored on disk. The store does not
// interpret it; the engine sets it on Put and reads it back on Get/Range to
// know how to turn the payload into its in-memory type.
type Encoding uint8

const (
	// EncodingRaw: the payload is the in-memory bytes of the block and comes
	// back bit-identical. The default.
	EncodingRaw Encoding = 0
	// EncodingInt8: the payload was produced by EncodeInt8 from fp32 values
	// (lossy; see EncodeInt8). Decode with DecodeInt8.
	EncodingInt8 Encoding = 1
)

// MaxTokens is the largest number of token ids one Meta can carry (the
// meta length is a uint16 in the header).
const MaxTokens = (1<<16 - 1 - metaFixedSize) / 4

// Meta is what the engine needs to rebuild its block index on a warm restart
// without reading payloads. It is stored in front of the payload, covered by
// the header checksum (see doc.go for the byte layout).
type Meta struct {
	Parent   Key      // parent block in the prefix chain; zero for the first block of a prefix and for private blocks
	Kind     Kind     // KindPrefix or KindPrivate
	DType    uint8    // in-memory KV storage type of the block: an opaque tag owned by the engine (e.g. fp32, fp16)
	Encoding Encoding // how the payload is stored on disk: EncodingRaw (bit-identical) or EncodingInt8
	Tokens   []int32  // token ids held by the block, in order; len(Tokens) is its number of tokens (≤ MaxTokens)
}

// Value layout constants (format version 1). See doc.go.
const (
	formatVersion = 1  // value and file format version
	headerSize    = 16 // version, flags, meta length, payload length, header crc, payload crc
	metaFixedSize = 38 // parent(32) kind dtype encoding reserved(1) ntokens(2)
)

// crcTable is CRC-32C (Castagnoli), computed with SSE4.2/ARM CRC
// instructions by hash/crc32. See doc.go for why not SHA-256.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// metaSize returns the encoded size of m.
func metaSize(m *Meta) int { return metaFixedSize + 4*len(m.Tokens) }

// valueSize returns the size of the stored value of m and a payload of n bytes.
func valueSize(m *Meta, n int) int { return headerSize + metaSize(m) + n }

// encodeValue writes the stored value for (k, m, payload) into dst, which
// must have length valueSize(m, len(payload)). It panics if m has more than
// MaxTokens tokens (a programmer error; Put checks first).
func encodeValue(dst []byte, k *Key, m *Meta, payload []byte) {
	if len(m.Tokens) > MaxTokens {
		panic(fmt.Sprintf("swap: %d tokens in one block, max %d", len(m.Tokens), MaxTokens))
	}
	ms := metaSize(m)
	if len(dst) != headerSize+ms+len(payload) {
		panic(fmt.Sprintf("swap: encodeValue dst length %d, want %d", len(dst), headerSize+ms+len(payload)))
	}
	dst[0] = formatVersion
	dst[1] = 0 // flags, reserved
	binary.LittleEndian.PutUint16(dst[2:4], uint16(ms))
	binary.LittleEndian.PutUint32(dst[4:8], uint32(len(payload)))

	md := dst[headerSize : headerSize+ms]
	copy(md[0:32], m.Parent[:])
	md[32] = byte(m.Kind)
	md[33] = m.DType
	md[34] = byte(m.Encoding)
	md[35] = 0
	binary.LittleEndian.PutUint16(md[36:38], uint16(len(m.Tokens)))
	for i, t := range m.Tokens {
		binary.LittleEndian.PutUint32(md[metaFixedSize+4*i:], uint32(t))
	}
	copy(dst[headerSize+ms:], payload)

	binary.LittleEndian.PutUint32(dst[8:12], headerCRC(k, dst[0:8], md))
	binary.LittleEndian.PutUint32(dst[12:16], crc32.Checksum(payload, crcTable))
}

// headerCRC is CRC-32C over key ‖ value[0:8] ‖ meta. Including the key
// catches a value that ended up under the wrong key.
func headerCRC(k *Key, head, meta []byte) uint32 {
	c := crc32.Update(0, crcTable, k[:])
	c = crc32.Update(c, crcTable, head)
	return crc32.Update(c, crcTable, meta)
}

// decodeHeader checks a stored value's header and meta against their
// checksum and returns the meta and the (unchecked) payload, which aliases v.
// Tokens are appended to tokens[:0]. Any error wraps ErrCorrupt.
func decodeHeader(k *Key, v []byte, tokens []int32) (Meta, []byte, error) {
	var m Meta
	if len(v) < headerSize {
		return m, nil, fmt.Errorf("%w: value of %d bytes, shorter than the %d-byte header", ErrCorrupt, len(v), headerSize)
	}
	if v[0] != formatVersion {
		return m, nil, fmt.Errorf("%w: value format version %d, want %d", ErrCorrupt, v[0], formatVersion)
	}
	ms := int(binary.LittleEndian.Uint16(v[2:4]))
	ps := int(binary.LittleEndian.Uint32(v[4:8]))
	if ms < metaFixedSize || int64(headerSize)+int64(ms)+int64(ps) != int64(len(v)) {
		return m, nil, fmt.Errorf("%w: meta %d + payload %d bytes do not fill a %d-byte value", ErrCorrupt, ms, ps, len(v))
	}
	md := v[headerSize : headerSize+ms]
	if got, want := headerCRC(k, v[0:8], md), binary.LittleEndian.Uint32(v[8:12]); got != want {
		return m, nil, fmt.Errorf("%w: header checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	if v[1] != 0 {
		return m, nil, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, v[1])
	}
	if md[35] != 0 {
		return m, nil, fmt.Errorf("%w: reserved meta byte %#x", ErrCorrupt, md[35])
	}
	n := int(binary.LittleEndian.Uint16(md[36:38]))
	if ms != metaFixedSize+4*n {
		return m, nil, fmt.Errorf("%w: meta of %d bytes for %d tokens", ErrCorrupt, ms, n)
	}
	copy(m.Parent[:], md[0:32])
	m.Kind = Kind(md[32])
	m.DType = md[33]
	m.Encoding = Encoding(md[34])
	m.Tokens = tokens[:0]
	for i := range n {
		m.Tokens = append(m.Tokens, int32(binary.LittleEndian.Uint32(md[metaFixedSize+4*i:])))
	}
	return m, v[headerSize+ms:], nil
}

// decodeValue is decodeHeader plus the payload checksum. The returned
// payload aliases v.
func decodeValue(k *Key, v []byte, tokens []int32) (Meta, []byte, error) {
	m, p, err := decodeHeader(k, v, tokens)
	if err != nil {
		return m, nil, err
	}
	if got, want := crc32.Checksum(p, crcTable), binary.LittleEndian.Uint32(v[12:16]); got != want {
		return m, nil, fmt.Errorf("%w: payload checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	return m, p, nil
}
