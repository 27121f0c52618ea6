package sample

import "sync"

// DefaultSeed replaces a zero seed: xorshift started from 0 stays 0 forever.
const DefaultSeed uint64 = 0x9E3779B97F4A7C15

// xorshiftMul is run.c's xorshift64* output multiplier.
const xorshiftMul uint64 = 0x2545F4914F6CDD1D

// step is one xorshift64 state transition of run.c's random_u32.
func step(x uint64) uint64 {
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	return x
}

// toF32 is run.c's random_f32 applied to a state just stepped: the top 32 bits of the
// xorshift64* product, of which the top 24 become a float in [0, 1).
func toF32(state uint64) float32 {
	u := uint32((state * xorshiftMul) >> 32)
	return float32(u>>8) / 16777216.0
}

// Coin returns the k-th draw (k from 0) of run.c's random_f32 stream seeded with seed: the
// value run.c uses for its (k+1)-th sampled token. Seed 0 means DefaultSeed.
//
// The xorshift transition is linear over GF(2), so the state after k+1 steps is computed
// with a precomputed power-of-two jump table: O(log k) 64×64 bit-matrix products instead
// of k+1 steps, the same result as stepping (TestCoinJumpMatchesStepping). Coin panics if
// k < 0.
func Coin(seed uint64, k int) float32 {
	if k < 0 {
		panic("sample: negative draw index")
	}
	if seed == 0 {
		seed = DefaultSeed
	}
	return toF32(jump(seed, uint64(k)+1))
}

// bitMatrix is a linear map on 64-bit vectors over GF(2): column j is the image of bit j.
type bitMatrix [64]uint64

func (m *bitMatrix) apply(v uint64) uint64 {
	var r uint64
	for j := 0; v != 0; j, v = j+1, v>>1 {
		if v&1 != 0 {
			r ^= m[j]
		}
	}
	return r
}

// jumpTable returns T^(2^i) for i in [0, 64), T being one xorshift step.
var jumpTable = sync.OnceValue(func() *[64]bitMatrix {
	var t [64]bitMatrix
	for j := range 64 {
		t[0][j] = step(1 << j)
	}
	for i := 1; i < 64; i++ {
		for j := range 64 {
			t[i][j] = t[i-1].apply(t[i-1][j])
		}
	}
	return &t
})

// jump returns the state after n xorshift steps from x.
func jump(x, n uint64) uint64 {
	if n <= 64 { // a few plain steps are cheaper than matrix products
		for ; n > 0; n-- {
			x = step(x)
		}
		return x
	}
	t := jumpTable()
	for i := 0; n != 0; i, n = i+1, n>>1 {
		if n&1 != 0 {
			x = t[i].apply(x)
		}
	}
	return x
}
