package ckpt

import (
	"math"

	"github.com/kvmesh/kvmesh/model/tensor"
)

// quantize writes the Q8_0 form of w, which holds whole groups, as export.py's
// quantize_q80 computes it: per group scale = max|w| / 127 and q = round-half-even(w /
// scale), in float32. An all-zero group gets scale 0 and zeros (export.py would divide by
// zero); non-finite values quantize to 0.
func quantize(w []float32, groupSize int, q []int8, scales []float32) {
	for g := range len(w) / groupSize {
		group := w[g*groupSize : (g+1)*groupSize]
		var wmax float32
		for _, v := range group {
			wmax = max(wmax, float32(math.Abs(float64(v))))
		}
		scale := wmax / 127
		scales[g] = scale
		for i, v := range group {
			x := math.RoundToEven(float64(v / scale))
			if scale == 0 || math.IsNaN(x) {
				x = 0
			}
			q[g*groupSize+i] = int8(max(-127, min(127, x)))
		}
	}
}

// dequantize returns m's values as fp32: q * scale, as runq.c's dequantize.
func dequantize(m tensor.Matrix) []float32 {
	out := make([]float32, len(m.Q8)) // (rows, cols)
	for i, q := range m.Q8 {
		out[i] = float32(q) * m.Scales[i/m.GroupSize]
	}
	return out
}
