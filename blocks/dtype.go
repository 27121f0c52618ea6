package blocks

import "fmt"

// DType is the storage type of K and V in the cache.
type DType uint8

const (
	// FP32 stores IEEE single precision: exact, and the default.
	FP32 DType = iota
	// FP16 stores IEEE half precision, rounded to nearest even (relative error ≤ 2^-11 in
	// the normal range, |x| ≥ 2^-14; values beyond ±65504 become ±Inf).
	FP16
	// Int8 stores symmetric 8-bit integers in [-127, 127] with one fp32 scale per
	// (block, K or V, layer, head, slot): per token and head. Error ≤ maxabs/254 per element,
	// maxabs being the largest magnitude in that token's head.
	Int8
	// Int4 stores symmetric 4-bit integers in [-7, 7] (the nibble -8 is never produced),
	// two per byte, with the same per token-and-head scale. Error ≤ maxabs/14 per element.
	Int4
)

var dtypeNames = [...]string{FP32: "fp32", FP16: "fp16", Int8: "int8", Int4: "int4"}

// ParseDType reads a storage type name: "fp32", "fp16", "int8" or "int4". Any other name
// yields an error wrapping ErrUnknownDType.
func ParseDType(s string) (DType, error) {
	for d, name := range dtypeNames {
		if s == name {
			return DType(d), nil
		}
	}
	return 0, fmt.Errorf("%w %q (want fp32, fp16, int8 or int4)", ErrUnknownDType, s)
}

// String is the name ParseDType reads.
func (d DType) String() string {
	if d.valid() {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

func (d DType) valid() bool { return int(d) < len(dtypeNames) }

// Shape is the geometry of one block. Layers counts the layers this process holds, not the
// model's total, so a pipeline stage's cache only stores its own layers.
type Shape struct {
	Layers    int // layers held by this process
	KVHeads   int // key/value heads per layer
	HeadSize  int // elements per head
	BlockSize int // tokens per block
}

// rows is the number of (layer, head, slot) rows of K (or of V) in one block.
func (s Shape) rows() int { return s.Layers * s.KVHeads * s.BlockSize }

// elems is the number of K and V elements in one block.
func (s Shape) elems() int { return 2 * s.rows() * s.HeadSize }

// BlockBytes is the memory one block takes in storage type d: K and V of every layer, head
// and slot, plus the int8/int4 scales. It panics on an invalid d.
func (s Shape) BlockBytes(d DType) int {
	switch d {
	case FP32:
		return 4 * s.elems()
	case FP16:
		return 2 * s.elems()
	case Int8:
		return s.elems() + 4*2*s.rows()
	case Int4:
		return s.elems()/2 + 4*2*s.rows()
	}
	panic(fmt.Sprintf("blocks: BlockBytes of %v", d))
}
