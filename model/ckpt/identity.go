package ckpt

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// Identity sampling: files up to identityWhole bytes are hashed whole; larger ones through
// identitySamples windows of identityWindow bytes spread evenly over the tensors.
const (
	identityWhole   = 1 << 20
	identitySamples = 64
	identityWindow  = 4 << 10
	identityDomain  = "kvmesh/ckpt identity v1\n"
)

// Identity names the checkpoint's weights: the hex SHA-256 of a domain string, the file
// size (uint64 little-endian), the header, and the tensor bytes: all of them for files up
// to 1 MiB, else 64 windows of 4 KiB at evenly spaced offsets from the first tensor byte to
// the last (256 KiB read, so a 4 GB map is not paged in). Equal files have equal
// identities; files that differ only outside the windows (not a different training run or
// fine-tune, which changes nearly every weight) collide. It stays valid after Close.
func (c *Checkpoint) Identity() string { return c.identity }

// identity computes Identity over a whole file with a header of header bytes.
func identity(data []byte, header int64) string {
	h := sha256.New()
	h.Write([]byte(identityDomain))
	var size [8]byte
	binary.LittleEndian.PutUint64(size[:], uint64(len(data)))
	h.Write(size[:])
	if len(data) <= identityWhole {
		h.Write(data)
		return hex.EncodeToString(h.Sum(nil))
	}
	h.Write(data[:header])
	body := data[header:]
	span := int64(len(body) - identityWindow)
	for i := int64(0); i < identitySamples; i++ {
		off := span * i / (identitySamples - 1)
		h.Write(body[off : off+identityWindow])
	}
	return hex.EncodeToString(h.Sum(nil))
}
