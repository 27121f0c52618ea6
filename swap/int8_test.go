package swap

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// kvLike returns n values shaped like KV activations: mostly small,
// normally distributed, with rare outliers.
func kvLike(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		if r.IntN(100) == 0 {
			x[i] *= 8
		}
	}
	return x
}

func TestInt8RoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		group int
	}{
		{"stories260K block, head size 8", 2 * 5 * 32 * 16, 8},
		{"group 32", 4096, 32},
		{"llama2c-110m head size 64", 2 * 768 * 16, 64},
		{"partial last group", 1000, 64},
		{"single value", 1, 64},
		{"empty", 0, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := kvLike(uint64(tt.n), tt.n)
			enc := EncodeInt8(nil, x, tt.group)
			if len(enc) != Int8Len(tt.n, tt.group) {
				t.Fatalf("encoded %d bytes, Int8Len says %d", len(enc), Int8Len(tt.n, tt.group))
			}
			y, err := DecodeInt8(nil, enc, tt.group)
			if err != nil || len(y) != tt.n {
				t.Fatalf("decode: %d values, %v", len(y), err)
			}
			var sumSq, errSq, maxRel float64
			for g := 0; g < tt.n; g += tt.group {
				end := min(g+tt.group, tt.n)
				var amax float64
				for _, v := range x[g:end] {
					amax = max(amax, math.Abs(float64(v)))
				}
				bound := amax/254 + 1e-6*amax
				for i := g; i < end; i++ {
					d := math.Abs(float64(x[i]) - float64(y[i]))
					if d > bound {
						t.Fatalf("value %d: %v → %v, error %g over the bound %g", i, x[i], y[i], d, bound)
					}
					if amax > 0 {
						maxRel = max(maxRel, d/amax)
					}
					sumSq += float64(x[i]) * float64(x[i])
					errSq += d * d
				}
			}
			if tt.n > 0 {
				t.Logf("%d values, group %d: %d bytes vs %d fp32 (%.3f), max error %.4f of group max, relative RMS error %.4f",
					tt.n, tt.group, len(enc), 4*tt.n, float64(len(enc))/float64(4*tt.n), maxRel, math.Sqrt(errSq/sumSq))
			}
		})
	}
}

func TestInt8Special(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	x := []float32{0, 0, 0, 0, 1, -2, inf, nan, -inf, 0.5, 0, 0}
	y, err := DecodeInt8(nil, EncodeInt8(nil, x, 4), 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 0, 0, 0, 1, -2, 2, 0, -0.5, 0.5, 0, 0}
	for i := range want {
		if math.Abs(float64(y[i]-want[i])) > 2.0/254 {
			t.Errorf("value %d: %v → %v, want ≈%v", i, x[i], y[i], want[i])
		}
	}
	// A group of zeros decodes to exact zeros.
	for i := range 4 {
		if y[i] != 0 {
			t.Errorf("zero group value %d = %v", i, y[i])
		}
	}
}

func TestDecodeInt8BadLength(t *testing.T) {
	for _, n := range []int{1, 3, 4, 36 + 4} {
		if _, err := DecodeInt8(nil, make([]byte, n), 32); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d bytes: %v, want ErrCorrupt", n, err)
		}
	}
}

func TestInt8NoAllocs(t *testing.T) {
	x := kvLike(1, 4096)
	enc := make([]byte, 0, Int8Len(len(x), 32))
	dec := make([]float32, 0, len(x))
	allocs := testing.AllocsPerRun(10, func() {
		enc = EncodeInt8(enc, x, 32)
		dec, _ = DecodeInt8(dec, enc, 32)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per encode+decode with buffers", allocs)
	}
}
