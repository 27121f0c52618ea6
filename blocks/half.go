package blocks

import (
	"math"
	"sync"
)

// float32ToHalf converts f to IEEE 754 binary16, rounding to nearest, ties to even.
// Magnitudes that round beyond 65504 become ±Inf; NaN stays NaN (quiet, with the top bits
// of its payload); results below the smallest subnormal, 2^-24, round to ±0 or to it.
func float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(mant>>13) // quiet NaN
	}
	e := exp - 127 + 15 // biased half exponent
	switch {
	case e >= 31:
		return sign | 0x7c00
	case e <= 0:
		if e < -10 { // below 2^-25: rounds to zero (float32 subnormals land here too)
			return sign
		}
		// Subnormal half: value = m·2^-24 with m = 1.mant·2^(e-14+23), shifted right.
		mant |= 0x800000
		shift := uint32(14 - e)
		m := mant >> shift
		rem, half := mant&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || rem == half && m&1 == 1 {
			m++ // may carry into the smallest normal, 0x0400, which is right
		}
		return sign | uint16(m)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, up to 0x7c00 = Inf, which is right
	}
	return sign | uint16(h)
}

// halfToFloat32 converts an IEEE 754 binary16 to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		f := float32(mant) * (1.0 / (1 << 24)) // exact: mant < 2^10
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

var (
	halfOnce  sync.Once
	halfTable *[1 << 16]float32 // halfTable[h] = halfToFloat32(h); built by loadHalfTable
)

// loadHalfTable builds the half → float32 table the FP16 kernels read. It is called by
// newStorage for FP16, so every FP16 storage sees the table built (sync.Once orders it).
func loadHalfTable() {
	halfOnce.Do(func() {
		t := new([1 << 16]float32)
		for h := range t {
			t[h] = halfToFloat32(uint16(h))
		}
		halfTable = t
	})
}
