package loadgen

import (
	"math/rand/v2"
	"time"
)

// poissonArrivals returns the arrival times of n requests of a Poisson process of rate
// requests per second, as offsets from the start: the gaps are independent exponential
// draws of mean 1/rate, the first arrival at the first gap. The same seed gives the same
// times. rate must be > 0.
func poissonArrivals(n int, rate float64, seed int64) []time.Duration {
	if rate <= 0 {
		panic("loadgen: poissonArrivals with rate ≤ 0")
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x617272697661)) // "arriva"
	out := make([]time.Duration, n)
	var t float64 // seconds
	for i := range out {
		t += rng.ExpFloat64() / rate
		out[i] = time.Duration(t * float64(time.Second))
	}
	return out
}

// maxTokens returns the max_tokens of n requests: hi for all when lo is 0, else uniform
// draws from lo..hi, the same for the same seed.
func maxTokens(n, lo, hi int, seed int64) []int {
	out := make([]int, n)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d6178746f6b)) // "maxtok"
	for i := range out {
		out[i] = hi
		if lo > 0 {
			out[i] = lo + rng.IntN(hi-lo+1)
		}
	}
	return out
}
