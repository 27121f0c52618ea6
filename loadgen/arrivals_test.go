package loadgen

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestPoissonArrivals(t *testing.T) {
	const n = 20000
	for _, rate := range []float64{0.5, 10, 1000} {
		a := poissonArrivals(n, rate, 7)
		if !slices.Equal(a, poissonArrivals(n, rate, 7)) {
			t.Fatalf("rate %v: same seed, different arrivals", rate)
		}
		if slices.Equal(a[:10], poissonArrivals(10, rate, 8)) {
			t.Fatalf("rate %v: seeds 7 and 8 give the same arrivals", rate)
		}
		var sum, sq float64
		prev := time.Duration(0)
		for i, x := range a {
			if x < prev {
				t.Fatalf("rate %v: arrival %d at %v before %v", rate, i, x, prev)
			}
			g := (x - prev).Seconds()
			sum += g
			sq += g * g
			prev = x
		}
		mean := sum / n
		sd := math.Sqrt(sq/n - mean*mean)
		// The mean of n exponential gaps has a relative standard error of 1/√n ≈ 0.7%;
		// an exponential's standard deviation equals its mean.
		if want := 1 / rate; math.Abs(mean-want) > 0.03*want {
			t.Errorf("rate %v: mean gap %v s, want %v s ± 3%%", rate, mean, want)
		}
		if math.Abs(sd/mean-1) > 0.05 {
			t.Errorf("rate %v: coefficient of variation %v, want 1 ± 0.05", rate, sd/mean)
		}
	}
}

func TestMaxTokens(t *testing.T) {
	if got := maxTokens(5, 0, 64, 1); !slices.Equal(got, []int{64, 64, 64, 64, 64}) {
		t.Fatalf("fixed budget: %v", got)
	}
	a := maxTokens(2000, 8, 128, 1)
	if !slices.Equal(a, maxTokens(2000, 8, 128, 1)) || slices.Equal(a, maxTokens(2000, 8, 128, 2)) {
		t.Fatal("budgets not deterministic per seed")
	}
	seen := map[int]bool{}
	for _, x := range a {
		if x < 8 || x > 128 {
			t.Fatalf("budget %d outside 8..128", x)
		}
		seen[x] = true
	}
	if !seen[8] || !seen[128] || len(seen) < 100 {
		t.Fatalf("budgets cover %d values", len(seen))
	}
}
