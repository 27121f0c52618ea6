package loadgen

import (
	"math"
	"slices"
	"time"
)

// Dist summarises a latency distribution, in milliseconds.
type Dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// distOf summarises xs; it sorts xs in place. An empty xs gives the zero Dist.
func distOf(xs []time.Duration) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	slices.Sort(xs)
	var sum float64
	for _, x := range xs {
		sum += ms(x)
	}
	return Dist{
		N:    len(xs),
		Mean: sum / float64(len(xs)),
		P50:  ms(percentileSorted(xs, 50)),
		P90:  ms(percentileSorted(xs, 90)),
		P99:  ms(percentileSorted(xs, 99)),
		Max:  ms(xs[len(xs)-1]),
	}
}

// percentileSorted returns the p-th percentile (0 ≤ p ≤ 100) of sorted, interpolating
// linearly between the two nearest order statistics: rank h = (n−1)·p/100 (numpy's
// default "linear" method). It panics on an empty slice or p out of range.
func percentileSorted(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 || !(p >= 0 && p <= 100) {
		panic("loadgen: percentile of an empty sample or out of [0, 100]")
	}
	h := float64(len(sorted)-1) * p / 100
	lo := int(math.Floor(h))
	hi := min(lo+1, len(sorted)-1)
	frac := h - float64(lo)
	a, b := float64(sorted[lo]), float64(sorted[hi])
	return time.Duration(math.Round(a + frac*(b-a)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
