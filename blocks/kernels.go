package blocks

import "math"

// The kernels of each storage type, on one row: the headSize elements of one token's head.
// Every fp32 product is rounded before it is added (the float32 conversion forbids the
// compiler to fuse it into an FMA), and sums run in index order, as run.c's loops do; so
// FP32 results equal llama2.c's bit for bit.

// Scores kernels fill out (n) with q·K[j] for the n rows of k (n·headSize, headSize =
// len(q)). They work on four rows at a time: four independent sums hide the latency of
// the adds, while each sum still runs in index order, so the result equals one dotF32 per
// row. AccumV kernels add Σ_j w[j]·V[j] into out, four rows per pass over out, each
// element still accumulated in order of j.

// dotF32 is Σ q[i]·k[i] in index order.
func dotF32(q, k []float32) float32 {
	k = k[:len(q)]
	var s float32
	for i, x := range q {
		s += float32(x * k[i])
	}
	return s
}

func scoresF32(out, q, k []float32) {
	hs, j := len(q), 0
	for ; j+4 <= len(out); j += 4 {
		k0, k1, k2, k3 := k[j*hs:][:hs], k[(j+1)*hs:][:hs], k[(j+2)*hs:][:hs], k[(j+3)*hs:][:hs]
		var s0, s1, s2, s3 float32
		for i, x := range q {
			s0 += float32(x * k0[i])
			s1 += float32(x * k1[i])
			s2 += float32(x * k2[i])
			s3 += float32(x * k3[i])
		}
		out[j], out[j+1], out[j+2], out[j+3] = s0, s1, s2, s3
	}
	for ; j < len(out); j++ {
		out[j] = dotF32(q, k[j*hs:])
	}
}

func accumF32(out, w, v []float32) {
	hs, j := len(out), 0
	for ; j+4 <= len(w); j += 4 {
		w0, w1, w2, w3 := w[j], w[j+1], w[j+2], w[j+3]
		v0, v1, v2, v3 := v[j*hs:][:hs], v[(j+1)*hs:][:hs], v[(j+2)*hs:][:hs], v[(j+3)*hs:][:hs]
		for i := range out {
			o := out[i]
			o += float32(w0 * v0[i])
			o += float32(w1 * v1[i])
			o += float32(w2 * v2[i])
			o += float32(w3 * v3[i])
			out[i] = o
		}
	}
	for ; j < len(w); j++ {
		vj := v[j*hs:][:hs]
		for i := range out {
			out[i] += float32(w[j] * vj[i])
		}
	}
}

// The FP16 kernels decode through tab, the half → float32 table.

func scoresF16(tab *[1 << 16]float32, out, q []float32, k []uint16) {
	hs, j := len(q), 0
	for ; j+4 <= len(out); j += 4 {
		k0, k1, k2, k3 := k[j*hs:][:hs], k[(j+1)*hs:][:hs], k[(j+2)*hs:][:hs], k[(j+3)*hs:][:hs]
		var s0, s1, s2, s3 float32
		for i, x := range q {
			s0 += float32(x * tab[k0[i]])
			s1 += float32(x * tab[k1[i]])
			s2 += float32(x * tab[k2[i]])
			s3 += float32(x * tab[k3[i]])
		}
		out[j], out[j+1], out[j+2], out[j+3] = s0, s1, s2, s3
	}
	for ; j < len(out); j++ {
		kj := k[j*hs:][:hs]
		var s float32
		for i, x := range q {
			s += float32(x * tab[kj[i]])
		}
		out[j] = s
	}
}

func accumF16(tab *[1 << 16]float32, out, w []float32, v []uint16) {
	hs, j := len(out), 0
	for ; j+4 <= len(w); j += 4 {
		w0, w1, w2, w3 := w[j], w[j+1], w[j+2], w[j+3]
		v0, v1, v2, v3 := v[j*hs:][:hs], v[(j+1)*hs:][:hs], v[(j+2)*hs:][:hs], v[(j+3)*hs:][:hs]
		for i := range out {
			o := out[i]
			o += float32(w0 * tab[v0[i]])
			o += float32(w1 * tab[v1[i]])
			o += float32(w2 * tab[v2[i]])
			o += float32(w3 * tab[v3[i]])
			out[i] = o
		}
	}
	for ; j < len(w); j++ {
		vj := v[j*hs:][:hs]
		for i := range out {
			out[i] += float32(w[j] * tab[vj[i]])
		}
	}
}

// The Int8 kernels sum over the integers and apply each row's scale once: Scores
// multiplies the integer dot product by sc[j]; AccumV folds sc[j] into the weight.

func scoresI8(out, q []float32, k []int8, sc []float32) {
	hs, j := len(q), 0
	sc = sc[:len(out)]
	for ; j+4 <= len(out); j += 4 {
		k0, k1, k2, k3 := k[j*hs:][:hs], k[(j+1)*hs:][:hs], k[(j+2)*hs:][:hs], k[(j+3)*hs:][:hs]
		var s0, s1, s2, s3 float32
		for i, x := range q {
			s0 += float32(x * float32(k0[i]))
			s1 += float32(x * float32(k1[i]))
			s2 += float32(x * float32(k2[i]))
			s3 += float32(x * float32(k3[i]))
		}
		out[j], out[j+1], out[j+2], out[j+3] = s0*sc[j], s1*sc[j+1], s2*sc[j+2], s3*sc[j+3]
	}
	for ; j < len(out); j++ {
		kj := k[j*hs:][:hs]
		var s float32
		for i, x := range q {
			s += float32(x * float32(kj[i]))
		}
		out[j] = s * sc[j]
	}
}

func accumI8(out, w []float32, v []int8, sc []float32) {
	hs, j := len(out), 0
	sc = sc[:len(w)]
	for ; j+4 <= len(w); j += 4 {
		w0, w1, w2, w3 := w[j]*sc[j], w[j+1]*sc[j+1], w[j+2]*sc[j+2], w[j+3]*sc[j+3]
		v0, v1, v2, v3 := v[j*hs:][:hs], v[(j+1)*hs:][:hs], v[(j+2)*hs:][:hs], v[(j+3)*hs:][:hs]
		for i := range out {
			o := out[i]
			o += float32(w0 * float32(v0[i]))
			o += float32(w1 * float32(v1[i]))
			o += float32(w2 * float32(v2[i]))
			o += float32(w3 * float32(v3[i]))
			out[i] = o
		}
	}
	for ; j < len(w); j++ {
		axpyI8(out, w[j]*sc[j], v[j*hs:])
	}
}

// axpyI8 does out[i] += ws·v[i], ws being the weight times the row's scale.
func axpyI8(out []float32, ws float32, v []int8) {
	v = v[:len(out)]
	for i, x := range v {
		out[i] += float32(ws * float32(x))
	}
}

// The Int4 kernels read signed nibbles, element 2i in the low nibble of byte i, two rows
// at a time (a row is headSize/2 bytes).

// lo4 and hi4 sign-extend the low and the high nibble of b.
func lo4(b byte) float32 { return float32(int8(b<<4) >> 4) }
func hi4(b byte) float32 { return float32(int8(b) >> 4) }

func scoresI4(out, q []float32, k []byte, sc []float32) {
	h2, j := len(q)/2, 0
	q = q[:2*h2]
	sc = sc[:len(out)]
	for ; j+4 <= len(out); j += 4 {
		k0, k1, k2, k3 := k[j*h2:][:h2], k[(j+1)*h2:][:h2], k[(j+2)*h2:][:h2], k[(j+3)*h2:][:h2]
		var s0, s1, s2, s3 float32
		for i := range k0 {
			x, y := q[2*i], q[2*i+1]
			s0 += float32(x * lo4(k0[i]))
			s0 += float32(y * hi4(k0[i]))
			s1 += float32(x * lo4(k1[i]))
			s1 += float32(y * hi4(k1[i]))
			s2 += float32(x * lo4(k2[i]))
			s2 += float32(y * hi4(k2[i]))
			s3 += float32(x * lo4(k3[i]))
			s3 += float32(y * hi4(k3[i]))
		}
		out[j], out[j+1], out[j+2], out[j+3] = s0*sc[j], s1*sc[j+1], s2*sc[j+2], s3*sc[j+3]
	}
	for ; j < len(out); j++ {
		out[j] = dotI4(q, k[j*h2:]) * sc[j]
	}
}

// dotI4 is Σ q[i]·k[i] over signed nibbles.
func dotI4(q []float32, k []byte) float32 {
	k = k[:len(q)/2]
	var s float32
	for i, b := range k {
		s += float32(q[2*i] * lo4(b))
		s += float32(q[2*i+1] * hi4(b))
	}
	return s
}

func accumI4(out, w []float32, v []byte, sc []float32) {
	h2, j := len(out)/2, 0
	out = out[:2*h2]
	sc = sc[:len(w)]
	for ; j+2 <= len(w); j += 2 {
		w0, w1 := w[j]*sc[j], w[j+1]*sc[j+1]
		v0, v1 := v[j*h2:][:h2], v[(j+1)*h2:][:h2]
		for i := range v0 {
			a, b := out[2*i], out[2*i+1]
			a += float32(w0 * lo4(v0[i]))
			b += float32(w0 * hi4(v0[i]))
			a += float32(w1 * lo4(v1[i]))
			b += float32(w1 * hi4(v1[i]))
			out[2*i], out[2*i+1] = a, b
		}
	}
	for ; j < len(w); j++ {
		axpyI4(out, w[j]*sc[j], v[j*h2:])
	}
}

// axpyI4 does out[i] += ws·nibble(v, i).
func axpyI4(out []float32, ws float32, v []byte) {
	v = v[:len(out)/2]
	for i, b := range v {
		out[2*i] += float32(ws * lo4(b))
		out[2*i+1] += float32(ws * hi4(b))
	}
}

// putF16 rounds src into dst.
func putF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = float32ToHalf(x)
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

// quantizer maps x to round(x/scale) clamped to ±qmax, 0 for every x when scale is 0. It
// works in float64 (x·(1/scale) is within 2^-52 of x/scale), so the only error that
// matters is the rounding to an integer: |q·scale - x| ≤ scale/2.
type quantizer struct{ inv, qmax float64 }

func newQuantizer(scale float32, qmax float64) quantizer {
	if scale == 0 {
		return quantizer{0, qmax}
	}
	return quantizer{1 / float64(scale), qmax}
}

func (z quantizer) q(x float32) int8 {
	return int8(max(-z.qmax, min(z.qmax, math.RoundToEven(float64(x)*z.inv))))
}

// putI8 quantizes src into dst and returns the scale.
func putI8(dst []int8, src []float32) float32 {
	scale := scaleFor(src, 127)
	z := newQuantizer(scale, 127)
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = z.q(x)
	}
	return scale
}

// putI4 quantizes src (even length) into nibbles of dst and returns the scale.
func putI4(dst []byte, src []float32) float32 {
	scale := scaleFor(src, 7)
	z := newQuantizer(scale, 7)
	dst = dst[:len(src)/2]
	for i := range dst {
		dst[i] = byte(z.q(src[2*i]))&0x0f | byte(z.q(src[2*i+1]))<<4
	}
	return scale
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }
