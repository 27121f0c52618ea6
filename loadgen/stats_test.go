package loadgen

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// naivePercentile is the oracle: the k-th smallest element found by counting, for the two
// ranks around h = (n−1)·p/100, interpolated linearly. Quadratic, and independent of the
// sorted-slice code.
func naivePercentile(xs []time.Duration, p float64) float64 {
	kth := func(k int) float64 { // the k-th smallest, 0-based
		for _, x := range xs {
			less, equal := 0, 0
			for _, y := range xs {
				if y < x {
					less++
				} else if y == x {
					equal++
				}
			}
			if less <= k && k < less+equal {
				return float64(x)
			}
		}
		panic("unreachable")
	}
	h := float64(len(xs)-1) * p / 100
	lo := int(math.Floor(h))
	a := kth(lo)
	if lo+1 >= len(xs) {
		return a
	}
	return a + (h-float64(lo))*(kth(lo+1)-a)
}

func TestPercentileTable(t *testing.T) {
	msd := func(v ...float64) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x * float64(time.Millisecond))
		}
		return out
	}
	tests := []struct {
		xs   []time.Duration
		p    float64
		want float64 // ms; numpy.percentile(xs, p)
	}{
		{msd(5), 50, 5},
		{msd(5), 99, 5},
		{msd(1, 2, 3, 4), 50, 2.5},
		{msd(1, 2, 3, 4), 90, 3.7},
		{msd(1, 2, 3, 4), 99, 3.97},
		{msd(1, 2, 3, 4), 0, 1},
		{msd(1, 2, 3, 4), 100, 4},
		{msd(10, 20), 50, 15},
		{msd(3, 3, 3), 90, 3},
	}
	for _, tt := range tests {
		got := ms(percentileSorted(tt.xs, tt.p))
		if math.Abs(got-tt.want) > 1e-6 {
			t.Errorf("p%v of %v: got %v ms, want %v ms", tt.p, tt.xs, got, tt.want)
		}
	}
}

func TestPercentileAgainstOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + rng.IntN(60)
		xs := make([]time.Duration, n)
		for i := range xs {
			if trial%3 == 0 {
				xs[i] = time.Duration(rng.IntN(5)) * time.Millisecond // many ties
			} else {
				xs[i] = time.Duration(rng.Int64N(int64(time.Second)))
			}
		}
		oracle := map[float64]float64{}
		for _, p := range []float64{0, 1, 10, 25, 50, 75, 90, 99, 99.9, 100} {
			oracle[p] = naivePercentile(xs, p)
		}
		d := distOf(xs) // sorts xs
		for p, want := range oracle {
			got := float64(percentileSorted(xs, p))
			if math.Abs(got-want) > 1 { // rounding to whole nanoseconds
				t.Fatalf("trial %d: p%v = %v, oracle %v", trial, p, got, want)
			}
		}
		if !(d.P50 <= d.P90 && d.P90 <= d.P99 && d.P99 <= d.Max) || d.N != n {
			t.Fatalf("trial %d: dist out of order: %+v", trial, d)
		}
		var sum float64
		for _, x := range xs {
			sum += ms(x)
		}
		if math.Abs(d.Mean-sum/float64(n)) > 1e-9 || d.Max != ms(xs[n-1]) {
			t.Fatalf("trial %d: mean/max %v/%v", trial, d.Mean, d.Max)
		}
	}
	if d := distOf(nil); d != (Dist{}) {
		t.Fatalf("empty dist: %+v", d)
	}
}
