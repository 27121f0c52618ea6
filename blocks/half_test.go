package blocks

import (
	"math"
	"math/rand/v2"
	"testing"
)

// halfValue is the exact value of a finite half, computed from the definition.
func halfValue(h uint16) float64 {
	e, m := int(h>>10&0x1f), float64(h&0x3ff)
	v := math.Ldexp(m, -24) // subnormal: m·2^-24
	if e > 0 {
		v = math.Ldexp(1024+m, e-25) // normal: (1 + m/1024)·2^(e-15)
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return v
}

func isHalfNaN(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }

// TestHalfExhaustive decodes every one of the 65536 halves against the definition and
// checks that encoding gives the same half back (NaNs stay NaN with their sign).
func TestHalfExhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := halfToFloat32(h)
		switch {
		case isHalfNaN(h):
			if !math.IsNaN(float64(f)) {
				t.Fatalf("half %#04x: %v, want NaN", h, f)
			}
			if back := float32ToHalf(f); !isHalfNaN(back) || back&0x8000 != h&0x8000 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		case h&0x7fff == 0x7c00:
			if !math.IsInf(float64(f), 1-2*int(h>>15)) {
				t.Fatalf("half %#04x: %v, want Inf", h, f)
			}
		case float64(f) != halfValue(h):
			t.Fatalf("half %#04x: %v, want %v", h, f, halfValue(h))
		}
		if math.Signbit(float64(f)) != (h&0x8000 != 0) {
			t.Fatalf("half %#04x: sign of %v", h, f)
		}
		if back := float32ToHalf(f); back != h {
			t.Fatalf("half %#04x → %v → %#04x", h, f, back)
		}
	}
}

// TestHalfRounding checks round-to-nearest-even at every rounding boundary: for each pair of
// adjacent non-negative halves (the last pair being 65504 and the overflow point 65536), the
// midpoint rounds to the even one, and the float32 just below or above it to the nearer.
func TestHalfRounding(t *testing.T) {
	for _, sign := range []uint16{0, 0x8000} {
		for h := uint16(0); h < 0x7c00; h++ {
			lo, hi := halfValue(h), halfValue(h+1)
			if h+1 == 0x7c00 {
				hi = 65536
			}
			mid := float32((lo + hi) / 2) // exact: one bit more than a half's 11
			if float64(mid) != (lo+hi)/2 {
				t.Fatalf("midpoint of %#04x not exact", h)
			}
			even := h
			if h&1 == 1 {
				even = h + 1
			}
			neg := func(x float32) float32 {
				if sign != 0 {
					return -x
				}
				return x
			}
			for _, tc := range []struct {
				x    float32
				want uint16
			}{
				{mid, even},
				{math.Nextafter32(mid, 0), h},
				{math.Nextafter32(mid, float32(math.Inf(1))), h + 1},
			} {
				if got := float32ToHalf(neg(tc.x)); got != sign|tc.want {
					t.Fatalf("float32ToHalf(%g) = %#04x, want %#04x", neg(tc.x), got, sign|tc.want)
				}
			}
		}
	}
}

func TestHalfEdgeCases(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		name string
		in   float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"largest", 65504, 0x7bff},
		{"rounds down to largest", 65519.99, 0x7bff},
		{"rounds to inf", 65520, 0x7c00},
		{"overflow", 1e6, 0x7c00},
		{"negative overflow", -1e30, 0xfc00},
		{"inf", inf, 0x7c00},
		{"negative inf", -inf, 0xfc00},
		{"smallest normal", 1.0 / (1 << 14), 0x0400},
		{"largest subnormal", 1023.0 / (1 << 24), 0x03ff},
		{"smallest subnormal", 1.0 / (1 << 24), 0x0001},
		{"half the smallest subnormal, tie to zero", 1.0 / (1 << 25), 0x0000},
		{"above half the smallest subnormal", math.Nextafter32(1.0/(1<<25), 1), 0x0001},
		{"1.5 subnormals, tie to even", 1.5 / (1 << 24), 0x0002},
		{"float32 subnormal", math.SmallestNonzeroFloat32, 0x0000},
		{"negative tiny", -1e-30, 0x8000},
		{"tie to even down", 1 + 1.0/2048, 0x3c00},
		{"tie to even up", 1 + 3.0/2048, 0x3c02},
		{"subnormal carry to normal", 1.0/(1<<14) - 1.0/(1<<26), 0x0400},
	} {
		if got := float32ToHalf(tc.in); got != tc.want {
			t.Errorf("%s: float32ToHalf(%g) = %#04x, want %#04x", tc.name, tc.in, got, tc.want)
		}
	}
	if h := float32ToHalf(float32(math.NaN())); !isHalfNaN(h) {
		t.Errorf("NaN → %#04x", h)
	}
	// A NaN whose payload lives only in the low bits must not turn into Inf.
	if h := float32ToHalf(math.Float32frombits(0x7f800001)); !isHalfNaN(h) {
		t.Errorf("signalling NaN → %#04x", h)
	}
}

// TestHalfRelativeError: in the normal range the error is at most 2^-11 of the value.
func TestHalfRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		// Log-uniform magnitude over the normal half range.
		x := float32(math.Ldexp(1+rng.Float64(), rng.IntN(30)-14))
		if x > 65504 {
			continue
		}
		if rng.IntN(2) == 0 {
			x = -x
		}
		got := float64(halfToFloat32(float32ToHalf(x)))
		if rel := math.Abs(got-float64(x)) / math.Abs(float64(x)); rel > 1.0/2048 {
			t.Fatalf("%g → %g: relative error %g > 2^-11", x, got, rel)
		}
	}
}
