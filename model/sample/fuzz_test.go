package sample

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

// FuzzSampleMatchesNaive decodes logits from bytes (finite, in [-64, 64)) and checks that
// Sample returns a valid index equal to the naive transcription of run.c.
func FuzzSampleMatchesNaive(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0}, float32(1), float32(0.9), uint64(42), uint16(0))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, float32(0.5), float32(0.5), uint64(7), uint16(99))
	f.Add([]byte{255, 0, 255, 0, 128, 128}, float32(2), float32(0), uint64(133742), uint16(3))
	f.Add([]byte{9}, float32(1), float32(0.95), uint64(0), uint16(1000))
	f.Fuzz(func(t *testing.T, raw []byte, temp, topp float32, seed uint64, k uint16) {
		p := Params{Temperature: temp, TopP: topp, Seed: seed}
		if p.Validate() != nil || temp < 1e-3 || len(raw) < 2 {
			return
		}
		logits := make([]float32, len(raw)/2)
		for i := range logits {
			logits[i] = float32(int16(binary.LittleEndian.Uint16(raw[2*i:]))) / 512
		}
		got := New(len(logits)).Sample(slices.Clone(logits), p, int(k))
		if got < 0 || got >= len(logits) {
			t.Fatalf("Sample = %d outside [0, %d)", got, len(logits))
		}
		if want := naiveRunC(slices.Clone(logits), p, Coin(p.Seed, int(k))); got != want {
			t.Fatalf("logits %v %+v k %d: Sample = %d, naive run.c = %d", logits, p, k, got, want)
		}
	})
}

func TestNonFiniteLogitsStayInRange(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := [][]float32{
		{nan, nan, nan},
		{1, nan, 2},
		{inf, 0, 1},
		{-inf, -inf, 0},
		{inf, inf, -inf},
	}
	for _, logits := range cases {
		for _, p := range []Params{{}, {Temperature: 1, Seed: 1}, {Temperature: 1, TopP: 0.9, Seed: 1}} {
			if got := New(len(logits)).Sample(slices.Clone(logits), p, 3); got < 0 || got >= len(logits) {
				t.Errorf("logits %v %+v: Sample = %d, outside [0, %d)", logits, p, got, len(logits))
			}
		}
	}
}
