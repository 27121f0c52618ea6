package ckpt

import (
	"hash/fnv"
	"io"
)

// synthStd is the standard deviation of synthetic matrix weights, a usual initialisation
// scale for Llama models.
const synthStd = 0.02

// WriteSynthetic writes a checkpoint of shape and format cfg (see Write) with pseudo-random
// weights: norm weights 1, every matrix uniform on [-a, a) with a = 0.02·√3 (standard
// deviation 0.02). Tensor t's value i depends only on (seed, t's name, i), so the output is
// a pure function of cfg and seed. Weights are generated and written in chunks of 64K
// values: memory stays small whatever the model's size.
func WriteSynthetic(w io.Writer, cfg Config, seed uint64) error {
	const a = synthStd * 1.7320508075688772 // √3
	var state uint64
	return write(w, cfg, func(s segment, off int, dst []float32) {
		switch s.role {
		case roleAttnNorm, roleFFNNorm, roleFinalNorm:
			for i := range dst {
				dst[i] = 1
			}
			return
		}
		if off == 0 {
			h := fnv.New64a()
			h.Write([]byte(s.name()))
			state = seed ^ h.Sum64()
		}
		for i := range dst {
			u := float32(splitmix64(&state)>>40) / (1 << 24) // [0, 1)
			dst[i] = float32(a * (2*float64(u) - 1))
		}
	})
}

// splitmix64 advances state and returns the next value of the SplitMix64 generator.
func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
