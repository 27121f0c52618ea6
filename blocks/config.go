package blocks

import (
	"fmt"
	"math"
	"os"
)

// Config configures a Cache.
type Config struct {
	// Shape of one block. Layers, KVHeads and HeadSize must be set (HeadSize even for Int4);
	// BlockSize defaults to 16 tokens.
	Shape
	// DType is the storage type of K and V; default FP32.
	DType DType
	// NumBlocks is the number of physical blocks in the pool; required, at least 1. The
	// cache's memory is NumBlocks·BlockBytes(DType) bytes, allocated once by New.
	NumBlocks int
	// RecordEvents makes the cache queue a Stored and a Removed event whenever a block hash
	// enters or leaves the prefix cache; the owner drains them with TakeEvents. Default
	// false: nothing is queued.
	RecordEvents bool
	// Verify makes every table operation (Append, AppendCached, Fork, Truncate, Release,
	// SetHash, Uncache) run Check afterwards and panic on a violation: O(blocks) per call,
	// for tests and debugging. Default false, or true when the environment has
	// KVMESH_VERIFY=1, so any package's tests can turn it on without code changes.
	Verify bool
	// RecordCopies makes Append queue every copy-on-write copy it makes (TakeCopies), so
	// that the mirrors of this cache, pipeline stages holding other layers at the same
	// block ids, can repeat them. Default false.
	RecordCopies bool
	// Mirror makes a cache that only stores K/V at block ids another cache allocates: a
	// later stage of a pipeline holds the K/V of its own layers at the block ids the
	// leader's scheduler chose. Its tables come from View; Write and ImportBlock skip the
	// reference checks (the leader made them), and Append, Fork, Release and the prefix
	// cache are not used. Default false.
	Mirror bool
}

// verifyEnv is KVMESH_VERIFY=1, read once.
var verifyEnv = os.Getenv("KVMESH_VERIFY") == "1"

// DefaultBlockSize is the block size DefaultConfig and a zero Config.BlockSize give.
const DefaultBlockSize = 16

// DefaultConfig returns BlockSize 16 and FP32. The caller sets Layers, KVHeads, HeadSize
// and NumBlocks.
func DefaultConfig() Config {
	return Config{Shape: Shape{BlockSize: DefaultBlockSize}, DType: FP32}
}

// validate fills zero values with defaults and rejects what New cannot build.
func (c *Config) validate() error {
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	c.Verify = c.Verify || verifyEnv
	switch {
	case !c.DType.valid():
		return fmt.Errorf("%w: dtype %d", ErrUnknownDType, uint8(c.DType))
	case c.Layers <= 0 || c.KVHeads <= 0 || c.HeadSize <= 0 || c.BlockSize <= 0:
		return fmt.Errorf("%w: shape %+v must be positive", ErrBadConfig, c.Shape)
	case c.DType == Int4 && c.HeadSize%2 != 0:
		return fmt.Errorf("%w: int4 packs two values per byte and needs an even head size, got %d", ErrBadConfig, c.HeadSize)
	case c.NumBlocks <= 0 || c.NumBlocks >= math.MaxInt32:
		return fmt.Errorf("%w: NumBlocks %d must be in [1, 2^31-1)", ErrBadConfig, c.NumBlocks)
	case c.Shape.elems() > math.MaxInt/8/c.NumBlocks:
		return fmt.Errorf("%w: %d blocks of shape %+v do not fit in memory", ErrBadConfig, c.NumBlocks, c.Shape)
	}
	return nil
}
