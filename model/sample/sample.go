package sample

import (
	"cmp"
	"fmt"
	"math"
)

// Params are the sampling settings of one request.
type Params struct {
	// Temperature divides the logits before the softmax; 0 means greedy (argmax), no
	// randomness used. Must be finite and >= 0.
	Temperature float32
	// TopP in (0, 1) enables nucleus sampling: draw only among the most probable tokens
	// whose cumulative probability first exceeds TopP. 0 or 1 disables it (run.c treats
	// <= 0 and >= 1 alike). Must be in [0, 1].
	TopP float32
	// Seed starts run.c's xorshift stream; 0 means DefaultSeed (see the package doc).
	Seed uint64
}

// Validate reports, wrapping ErrParams, a temperature that is negative or not finite or a
// top-p outside [0, 1] or NaN.
func (p Params) Validate() error {
	t, q := float64(p.Temperature), float64(p.TopP)
	switch {
	case math.IsNaN(t) || math.IsInf(t, 0) || t < 0:
		return fmt.Errorf("%w: temperature %v must be finite and >= 0", ErrParams, p.Temperature)
	case math.IsNaN(q) || q < 0 || q > 1:
		return fmt.Errorf("%w: top_p %v must be in [0, 1]", ErrParams, p.TopP)
	}
	return nil
}

// probIndex is one nucleus candidate: a token and its probability.
type probIndex struct {
	prob  float32
	index int32
}

// byProbDesc orders candidates by probability descending, then index ascending: a total
// order, so any sort algorithm gives the same permutation.
func byProbDesc(a, b probIndex) int {
	if c := cmp.Compare(b.prob, a.prob); c != 0 {
		return c
	}
	return cmp.Compare(a.index, b.index)
}

// Sampler holds the scratch buffers for sampling over one vocabulary size. It is not safe
// for concurrent use; use one per goroutine.
type Sampler struct {
	vocab     int
	candidate []probIndex // (vocab,) nucleus candidates, sorted in place
}

// New returns a Sampler for logits of length vocab. It panics if vocab < 1.
func New(vocab int) *Sampler {
	if vocab < 1 {
		panic(fmt.Sprintf("sample: vocabulary size %d < 1", vocab))
	}
	return &Sampler{vocab: vocab, candidate: make([]probIndex, vocab)}
}

// Sample returns the token drawn from logits (vocab,) for the k-th sampled token of a
// request (k from 0; see the package doc), using the random number Coin(p.Seed, k). At
// temperature 0 it is Argmax(logits) and logits are left unchanged; otherwise logits are
// overwritten with the probabilities, as run.c does. It allocates nothing.
//
// It panics if len(logits) differs from the Sampler's vocabulary, if k < 0 or if p does
// not Validate: all are programmer errors.
func (s *Sampler) Sample(logits []float32, p Params, k int) int {
	if len(logits) != s.vocab {
		panic(fmt.Sprintf("sample: %d logits for a vocabulary of %d", len(logits), s.vocab))
	}
	if err := p.Validate(); err != nil {
		panic("sample: " + err.Error())
	}
	if p.Temperature == 0 {
		return Argmax(logits)
	}
	for i := range logits {
		logits[i] /= p.Temperature
	}
	softmax(logits)
	coin := Coin(p.Seed, k)
	if p.TopP <= 0 || p.TopP >= 1 {
		return sampleMult(logits, coin)
	}
	return s.sampleTopP(logits, p.TopP, coin)
}

// Argmax returns the first index of the maximum of x (run.c's strict >), or 0 for an
// empty or all-NaN x.
func Argmax(x []float32) int {
	best := 0
	for i := 1; i < len(x); i++ {
		if x[i] > x[best] {
			best = i
		}
	}
	return best
}

// softmax is run.c's: subtract the maximum, exponentiate, divide by the float32 sum.
func softmax(x []float32) {
	maxVal := x[0]
	for _, v := range x[1:] {
		if v > maxVal {
			maxVal = v
		}
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - maxVal)))
		x[i] = e
		sum += e
	}
	for i := range x {
		x[i] /= sum
	}
}

// sampleMult is run.c's sample_mult: the first index whose cumulative probability exceeds
// coin, or the last index if rounding leaves the sum below it.
func sampleMult(probs []float32, coin float32) int {
	var cdf float32
	for i, p := range probs {
		cdf += p
		if coin < cdf {
			return i
		}
	}
	return len(probs) - 1
}

// sampleTopP is run.c's sample_topp, with a deterministic order among equal probabilities.
func (s *Sampler) sampleTopP(probs []float32, topp, coin float32) int {
	n := len(probs)
	if n == 1 {
		return 0
	}
	// A token below (1-topp)/(n-1) cannot be in the nucleus: if it were, the mass before it
	// would be at most topp, so it and the tokens after it (at most n-1, each no larger)
	// would hold at least 1-topp. run.c crops such tokens before sorting; so do we.
	cutoff := (1 - topp) / float32(n-1)
	cand := s.candidate[:0]
	for i, p := range probs {
		if p >= cutoff {
			cand = append(cand, probIndex{prob: p, index: int32(i)})
		}
	}
	if len(cand) == 0 { // only with NaN probabilities
		return Argmax(probs)
	}

	// Take candidates in order until the cumulative probability exceeds topp. Instead of
	// sorting all of them (run.c's qsort), pop them from a heap: the same order (byProbDesc
	// is total), but O(n0 + m log n0) for a nucleus of m, usually far smaller than n0.
	// Popped candidates collect at the end of cand, the first at cand[len(cand)-1].
	n0 := len(cand)
	for i := n0/2 - 1; i >= 0; i-- {
		siftDown(cand, i)
	}
	var cum float32
	end := n0 // cand[:end] is the heap, cand[end:] the nucleus so far, reversed
	for end > 0 {
		end--
		cand[0], cand[end] = cand[end], cand[0]
		siftDown(cand[:end], 0)
		cum += cand[end].prob
		if cum > topp {
			break
		}
	} // if rounding keeps the sum at or below topp, every candidate is in the nucleus

	r := coin * cum
	var cdf float32
	for i := n0 - 1; i >= end; i-- {
		cdf += cand[i].prob
		if r < cdf {
			return int(cand[i].index)
		}
	}
	return int(cand[end].index)
}

// siftDown restores the heap property of h (the first in byProbDesc order at the root)
// below node i.
func siftDown(h []probIndex, i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && byProbDesc(h[c+1], h[c]) < 0 {
			c++
		}
		if byProbDesc(h[c], h[i]) >= 0 {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
