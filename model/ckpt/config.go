package ckpt

import (
	"fmt"
	"math"
)

// Config is a checkpoint's header: the model's shape and how its weights are stored.
type Config struct {
	Dim       int // width of the residual stream
	HiddenDim int // width of the SwiGLU feed-forward layer
	Layers    int
	Heads     int // query heads
	KVHeads   int // key/value heads; Heads is a multiple of it
	Vocab     int // tokens; always positive (the legacy sign is SharedClassifier)
	SeqLen    int // context length the model was trained for

	SharedClassifier bool // the classifier is the token embedding

	Version   int // 0 legacy, 1 ak42 fp32, 2 ak42 int8 (Q8_0)
	GroupSize int // version 2 only: values per quantization group; divides Dim and HiddenDim
}

// Layout constants of the three formats.
const (
	magic            = 0x616b3432 // "ak42" as a little-endian uint32
	legacyHeaderSize = 7 * 4
	ak42HeaderSize   = 256
	// maxBytes bounds a checkpoint's size (256 TiB): larger headers are absurd, and the
	// bound keeps every size computation far from overflow.
	maxBytes = 1 << 48
	// maxLayers bounds the layer count (real models have well under 200), so that a tiny
	// header cannot make Parse walk millions of per-layer tensors before its size is
	// checked against the data.
	maxLayers = 1 << 12
)

// HeadSize is the width of one attention head.
func (c Config) HeadSize() int { return c.Dim / c.Heads }

// KVDim is the width of the keys (and of the values) of one token in one layer.
func (c Config) KVDim() int { return c.KVHeads * c.HeadSize() }

// Params counts the weights of a valid checkpoint (the classifier once if shared; the
// legacy RoPE tables are not weights).
func (c Config) Params() int64 {
	var n int64
	for s := range c.segments() {
		if s.kind != unused {
			n += s.elems()
		}
	}
	return n
}

// FileSize is the exact size in bytes of a checkpoint with this header.
func (c Config) FileSize() (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	return c.fileSize(), nil
}

// Validate reports whether the header describes a model and a layout this package reads.
func (c Config) Validate() error {
	dims := [...]struct {
		name string
		v    int
	}{
		{"dim", c.Dim}, {"hidden dim", c.HiddenDim}, {"layers", c.Layers}, {"heads", c.Heads},
		{"kv heads", c.KVHeads}, {"vocab", c.Vocab}, {"seq len", c.SeqLen},
	}
	for _, d := range dims {
		if d.v <= 0 || d.v > math.MaxInt32 {
			return fmt.Errorf("%w: %s is %d, want 1..%d", ErrShape, d.name, d.v, math.MaxInt32)
		}
	}
	switch {
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("%w: dim %d is not a multiple of heads %d", ErrShape, c.Dim, c.Heads)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("%w: heads %d is not a multiple of kv heads %d", ErrShape, c.Heads, c.KVHeads)
	case c.HeadSize()%2 != 0:
		return fmt.Errorf("%w: head size %d is odd, RoPE rotates pairs", ErrShape, c.HeadSize())
	}
	switch c.Version {
	case 0, 1:
		if c.GroupSize != 0 {
			return fmt.Errorf("%w: group size %d given for unquantized version %d", ErrFormat, c.GroupSize, c.Version)
		}
	case 2:
		if c.GroupSize <= 0 || c.Dim%c.GroupSize != 0 || c.HiddenDim%c.GroupSize != 0 {
			return fmt.Errorf("%w: group size %d does not divide dim %d and hidden dim %d (rows must be whole groups)",
				ErrFormat, c.GroupSize, c.Dim, c.HiddenDim)
		}
	default:
		return fmt.Errorf("%w: unsupported version %d (want 0, 1 or 2)", ErrFormat, c.Version)
	}
	if c.Layers > maxLayers {
		return fmt.Errorf("%w: %d layers, more than %d", ErrShape, c.Layers, maxLayers)
	}
	// A tensor can have up to 2^62 values, so sum the sizes in float64 (exact enough to
	// compare with maxBytes) before any int64 arithmetic could overflow.
	var total float64
	for s := range c.segments() {
		total += float64(s.elems()) * s.bytesPerValue(c.GroupSize)
		if total > maxBytes {
			return fmt.Errorf("%w: tensors up to %s need more than %d bytes", ErrShape, s.name(), int64(maxBytes))
		}
	}
	return nil
}

// headerSize is the size of the header of c's format.
func (c Config) headerSize() int64 {
	if c.Version == 0 {
		return legacyHeaderSize
	}
	return ak42HeaderSize
}

// fileSize is the exact size of a file with header c; c must be valid.
func (c Config) fileSize() int64 {
	n := c.headerSize()
	for s := range c.segments() {
		n += s.bytes(c.GroupSize)
	}
	return n
}
