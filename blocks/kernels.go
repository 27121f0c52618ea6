package blocks

import "math"

// The kernels of each storage type, on one row: the headSize elements of one token's head.
// Every fp32 product is rounded before it is added (the float32 conversion forbids the
// compiler to fuse it into an FMA), and sums run in index order, as run.c's loops do; so
// FP32 results equal llama2.c's bit for bit.

// dotF32 is Σ q[i]·k[i] in index order.
func dotF32(q, k []float32) float32 {
	k = k[:len(q)]
	var s float32
	for i, x := range q {
		s += float32(x * k[i])
	}
	return s
}

// axpyF32 does out[i] += w·v[i].
func axpyF32(out []float32, w float32, v []float32) {
	v = v[:len(out)]
	for i, x := range v {
		out[i] += float32(w * x)
	}
}

// dotF16 is Σ q[i]·half(k[i]) in index order; tab is halfTable.
func dotF16(tab *[1 << 16]float32, q []float32, k []uint16) float32 {
	k = k[:len(q)]
	var s float32
	for i, x := range q {
		s += float32(x * tab[k[i]])
	}
	return s
}

// axpyF16 does out[i] += w·half(v[i]).
func axpyF16(tab *[1 << 16]float32, out []float32, w float32, v []uint16) {
	v = v[:len(out)]
	for i, x := range v {
		out[i] += float32(w * tab[x])
	}
}

// putF16 rounds src into dst.
func putF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = float32ToHalf(x)
	}
}

// dotI8 is Σ q[i]·k[i] over the integers k; the caller multiplies by the row's scale.
func dotI8(q []float32, k []int8) float32 {
	k = k[:len(q)]
	var s float32
	for i, x := range q {
		s += float32(x * float32(k[i]))
	}
	return s
}

// axpyI8 does out[i] += ws·v[i], ws being the weight times the row's scale.
func axpyI8(out []float32, ws float32, v []int8) {
	v = v[:len(out)]
	for i, x := range v {
		out[i] += float32(ws * float32(x))
	}
}

// dotI4 is Σ q[i]·k[i] over signed nibbles, element 2i in the low nibble of k[i/2].
func dotI4(q []float32, k []byte) float32 {
	k = k[:len(q)/2]
	var s float32
	for i, b := range k {
		s += float32(q[2*i] * float32(int8(b<<4)>>4))
		s += float32(q[2*i+1] * float32(int8(b)>>4))
	}
	return s
}

// axpyI4 does out[i] += ws·nibble(v, i).
func axpyI4(out []float32, ws float32, v []byte) {
	v = v[:len(out)/2]
	for i, b := range v {
		out[2*i] += float32(ws * float32(int8(b<<4)>>4))
		out[2*i+1] += float32(ws * float32(int8(b)>>4))
	}
}

// scaleFor is the symmetric scale that maps the largest magnitude of src to qmax.
// src must be finite.
func scaleFor(src []float32, qmax float32) float32 {
	var m float32
	for _, x := range src {
		m = max(m, abs32(x))
	}
	return m / qmax
}

// quantize is round(x/scale) clamped to ±qmax (0 when scale is 0). The division is done
// in float64 so that the only error is the rounding to an integer: |q·scale - x| ≤ scale/2.
func quantize(x, scale float32, qmax float64) int8 {
	if scale == 0 {
		return 0
	}
	q := math.Round(float64(x) / float64(scale))
	return int8(max(-qmax, min(qmax, q)))
}

// putI8 quantizes src into dst and returns the scale.
func putI8(dst []int8, src []float32) float32 {
	scale := scaleFor(src, 127)
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = quantize(x, scale, 127)
	}
	return scale
}

// putI4 quantizes src (even length) into nibbles of dst and returns the scale.
func putI4(dst []byte, src []float32) float32 {
	scale := scaleFor(src, 7)
	dst = dst[:len(src)/2]
	for i := range dst {
		lo := quantize(src[2*i], scale, 7)
		hi := quantize(src[2*i+1], scale, 7)
		dst[i] = byte(lo)&0x0f | byte(hi)<<4
	}
	return scale
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }
