package sample

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
)

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		p  Params
		ok bool
	}{
		{Params{}, true},
		{Params{Temperature: 1, TopP: 0.9, Seed: 42}, true},
		{Params{Temperature: 0.7, TopP: 1}, true},
		{Params{Temperature: 2, TopP: 0}, true},
		{Params{Temperature: -0.1}, false},
		{Params{Temperature: nan}, false},
		{Params{Temperature: inf}, false},
		{Params{Temperature: 1, TopP: -0.01}, false},
		{Params{Temperature: 1, TopP: 1.01}, false},
		{Params{Temperature: 1, TopP: nan}, false},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if tt.ok && err != nil {
			t.Errorf("%+v: unexpected error %v", tt.p, err)
		}
		if !tt.ok && !errors.Is(err, ErrParams) {
			t.Errorf("%+v: error %v, want ErrParams", tt.p, err)
		}
	}
}

func TestArgmax(t *testing.T) {
	tests := []struct {
		x    []float32
		want int
	}{
		{[]float32{1}, 0},
		{[]float32{1, 3, 2}, 1},
		{[]float32{5, 5, 5}, 0},
		{[]float32{-3, -1, -1, -2}, 1},
		{[]float32{0, 2, 7, 7}, 2},
		{nil, 0},
	}
	for _, tt := range tests {
		if got := Argmax(tt.x); got != tt.want {
			t.Errorf("Argmax(%v) = %d, want %d", tt.x, got, tt.want)
		}
	}
}

func TestGreedyLeavesLogits(t *testing.T) {
	logits := []float32{0.5, 2, -1, 2, 1.5}
	orig := slices.Clone(logits)
	s := New(len(logits))
	for k := range 5 {
		if got := s.Sample(logits, Params{Seed: 42}, k); got != 1 {
			t.Fatalf("greedy k=%d picked %d, want the first maximum 1", k, got)
		}
	}
	if !slices.Equal(logits, orig) {
		t.Errorf("greedy sampling changed the logits: %v, was %v", logits, orig)
	}
}

// logitsOf returns logits whose softmax is probs (up to rounding).
func logitsOf(probs ...float64) []float32 {
	l := make([]float32, len(probs))
	for i, p := range probs {
		l[i] = float32(math.Log(p))
	}
	return l
}

func TestTopPExcludesTail(t *testing.T) {
	// Probabilities 0.5, 0.3, 0.15, 0.05 and top-p 0.7: the nucleus is {0, 1}
	// (cumulative 0.8 first exceeds 0.7), so r = coin*0.8 picks 0 iff coin < 0.625.
	s := New(4)
	p := Params{Temperature: 1, TopP: 0.7, Seed: 7}
	for k := range 2000 {
		got := s.Sample(logitsOf(0.5, 0.3, 0.15, 0.05), p, k)
		want := 1
		if c := Coin(7, k); c*0.8 < 0.5 {
			want = 0
		}
		if got != want {
			t.Fatalf("k=%d coin %v: got token %d, want %d", k, Coin(7, k), got, want)
		}
	}
}

func TestTopPTiesInIndexOrder(t *testing.T) {
	// Four equal probabilities, top-p 0.5: the cumulative sum reaches 0.5 at the second
	// candidate but must exceed it, so the nucleus is the first three by index.
	s := New(4)
	p := Params{Temperature: 1, TopP: 0.5, Seed: 133742}
	for k := range 2000 {
		got := s.Sample(make([]float32, 4), p, k)
		r := Coin(133742, k) * 0.75
		want := 2
		switch {
		case r < 0.25:
			want = 0
		case r < 0.5:
			want = 1
		}
		if got != want {
			t.Fatalf("k=%d: got %d, want %d", k, got, want)
		}
	}
}

// frequencies samples logits n times with k = 0..n-1 and returns how often each token
// came up, as fractions.
func frequencies(t *testing.T, logits []float32, p Params, n int) []float64 {
	t.Helper()
	s := New(len(logits))
	buf := make([]float32, len(logits))
	count := make([]float64, len(logits))
	for k := range n {
		copy(buf, logits)
		count[s.Sample(buf, p, k)]++
	}
	for i := range count {
		count[i] /= float64(n)
	}
	return count
}

// checkFrequencies fails if a frequency is more than 5 standard errors from want.
func checkFrequencies(t *testing.T, name string, got, want []float64, n int) {
	t.Helper()
	for i := range want {
		tol := 5*math.Sqrt(want[i]*(1-want[i])/float64(n)) + 1e-9
		if math.Abs(got[i]-want[i]) > tol {
			t.Errorf("%s: token %d frequency %.4f, want %.4f ± %.4f", name, i, got[i], want[i], tol)
		}
	}
}

func softmax64(logits []float32, temp float64) []float64 {
	p := make([]float64, len(logits))
	var sum float64
	for i, l := range logits {
		p[i] = math.Exp(float64(l) / temp)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

func TestFrequenciesMatchSoftmax(t *testing.T) {
	const n = 20000
	logits := []float32{1.2, -0.3, 0.4, 2.0, 0, -1.5, 0.9, 0.1}
	tests := []struct {
		name string
		p    Params
	}{
		{"t=1", Params{Temperature: 1, Seed: 42}},
		{"t=0.5 sharpens", Params{Temperature: 0.5, Seed: 7}},
		{"t=2 flattens", Params{Temperature: 2, Seed: 133742}},
		{"top_p=1 is off", Params{Temperature: 1, TopP: 1, Seed: 42}},
	}
	for _, tt := range tests {
		want := softmax64(logits, float64(tt.p.Temperature))
		checkFrequencies(t, tt.name, frequencies(t, logits, tt.p, n), want, n)
	}
}

func TestTopPFrequencies(t *testing.T) {
	const n = 20000
	// Probabilities 0.4 0.25 0.15 0.1 0.06 0.04 with top-p 0.75: nucleus {0,1,2}
	// (cumulative 0.8), drawn in proportion 0.4:0.25:0.15 of 0.8.
	logits := logitsOf(0.4, 0.25, 0.15, 0.1, 0.06, 0.04)
	got := frequencies(t, logits, Params{Temperature: 1, TopP: 0.75, Seed: 42}, n)
	want := []float64{0.5, 0.3125, 0.1875, 0, 0, 0}
	checkFrequencies(t, "top_p=0.75", got, want, n)
}

// naiveRunC is run.c's sampling transcribed without its shortcuts: full stable sort of all
// tokens, no cutoff.
func naiveRunC(logits []float32, p Params, coin float32) int {
	for i := range logits {
		logits[i] /= p.Temperature
	}
	softmax(logits)
	type pi struct {
		p float32
		i int
	}
	all := make([]pi, len(logits))
	for i, v := range logits {
		all[i] = pi{v, i}
	}
	if p.TopP <= 0 || p.TopP >= 1 {
		return sampleMult(logits, coin)
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].p > all[b].p })
	var cum float32
	last := len(all) - 1
	for i, c := range all {
		cum += c.p
		if cum > p.TopP {
			last = i
			break
		}
	}
	r := coin * cum
	var cdf float32
	for _, c := range all[:last+1] {
		cdf += c.p
		if r < cdf {
			return c.i
		}
	}
	return all[last].i
}

func TestMatchesNaiveRunC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		vocab := 1 + rng.IntN(600)
		logits := make([]float32, vocab)
		scale := 0.5 + 4*rng.Float32()
		for i := range logits {
			logits[i] = scale * float32(rng.NormFloat64())
		}
		p := Params{
			Temperature: []float32{0.3, 0.8, 1, 1.5}[rng.IntN(4)],
			TopP:        []float32{0, 0.5, 0.9, 0.95, 1}[rng.IntN(5)],
			Seed:        rng.Uint64(),
		}
		k := rng.IntN(5000)
		a, b := slices.Clone(logits), slices.Clone(logits)
		got := New(vocab).Sample(a, p, k)
		want := naiveRunC(b, p, Coin(p.Seed, k))
		if got != want {
			t.Fatalf("trial %d (vocab %d, %+v, k %d): Sample = %d, naive run.c = %d", trial, vocab, p, k, got, want)
		}
	}
}

func TestTiesMatchNaiveRunC(t *testing.T) {
	// Logits from a few values give many exactly equal probabilities; the stable sort of
	// the naive transcription keeps them in index order, as Sample's total order does.
	rng := rand.New(rand.NewPCG(9, 10))
	for trial := range 300 {
		vocab := 2 + rng.IntN(300)
		logits := make([]float32, vocab)
		for i := range logits {
			logits[i] = float32(rng.IntN(3))
		}
		p := Params{Temperature: 1, TopP: []float32{0.1, 0.5, 0.9, 0.99}[rng.IntN(4)], Seed: rng.Uint64()}
		k := rng.IntN(1000)
		got := New(vocab).Sample(slices.Clone(logits), p, k)
		if want := naiveRunC(slices.Clone(logits), p, Coin(p.Seed, k)); got != want {
			t.Fatalf("trial %d (vocab %d, %+v, k %d): Sample = %d, naive run.c = %d", trial, vocab, p, k, got, want)
		}
	}
}

func TestPositionPure(t *testing.T) {
	// The token for draw k depends on (logits, params, k) only: sampling the draws in a
	// shuffled order with another Sampler gives the same tokens.
	logits := []float32{0.3, 1.1, -0.2, 0.8, 0.5, 0.0, 1.4}
	p := Params{Temperature: 1, TopP: 0.9, Seed: 42}
	const n = 500
	inOrder := make([]int, n)
	s := New(len(logits))
	buf := make([]float32, len(logits))
	for k := range n {
		copy(buf, logits)
		inOrder[k] = s.Sample(buf, p, k)
	}
	other := New(len(logits))
	for _, k := range rand.New(rand.NewPCG(3, 4)).Perm(n) {
		copy(buf, logits)
		if got := other.Sample(buf, p, k); got != inOrder[k] {
			t.Fatalf("k=%d: out of order %d, in order %d", k, got, inOrder[k])
		}
	}
}

func TestVocabOfOne(t *testing.T) {
	s := New(1)
	for _, p := range []Params{{}, {Temperature: 1}, {Temperature: 1, TopP: 0.9}} {
		if got := s.Sample([]float32{3}, p, 0); got != 0 {
			t.Errorf("%+v: got %d, want 0", p, got)
		}
	}
}

func TestSamplePanics(t *testing.T) {
	s := New(3)
	tests := map[string]func(){
		"wrong length": func() { s.Sample(make([]float32, 4), Params{Temperature: 1}, 0) },
		"negative k":   func() { s.Sample(make([]float32, 3), Params{Temperature: 1}, -1) },
		"bad params":   func() { s.Sample(make([]float32, 3), Params{Temperature: -1}, 0) },
		"vocab 0":      func() { New(0) },
	}
	for name, f := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestSampleAllocatesNothing(t *testing.T) {
	const vocab = 32000
	logits := make([]float32, vocab)
	buf := make([]float32, vocab)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range logits {
		logits[i] = 3 * float32(rng.NormFloat64())
	}
	s := New(vocab)
	for _, p := range []Params{{}, {Temperature: 1, Seed: 1}, {Temperature: 0.8, TopP: 0.9, Seed: 2}} {
		k := 0
		allocs := testing.AllocsPerRun(20, func() {
			copy(buf, logits)
			s.Sample(buf, p, k)
			k += 997
		})
		if allocs != 0 {
			t.Errorf("%+v: %v allocations per Sample, want 0", p, allocs)
		}
	}
}

func BenchmarkSample(b *testing.B) {
	for _, vocab := range []int{512, 32000} {
		logits := make([]float32, vocab)
		rng := rand.New(rand.NewPCG(7, 8))
		for i := range logits {
			logits[i] = 3 * float32(rng.NormFloat64())
		}
		buf := make([]float32, vocab)
		s := New(vocab)
		for _, p := range []Params{{}, {Temperature: 1, Seed: 1}, {Temperature: 1, TopP: 0.9, Seed: 1}} {
			name := "greedy"
			if p.Temperature > 0 {
				name = "mult"
				if p.TopP > 0 {
					name = "topp"
				}
			}
			b.Run(name+"/vocab="+strconv.Itoa(vocab), func(b *testing.B) {
				k := 0
				for b.Loop() {
					copy(buf, logits)
					s.Sample(buf, p, k)
					k++
				}
			})
		}
	}
}
