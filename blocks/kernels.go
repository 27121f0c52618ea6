package blocks

import "math"

// The attention kernels of each storage type. Every fp32 product is rounded before it is
// added (the float32 conversion forbids the compiler to fuse it into an FMA), and every
// sum runs in the order run.c's loops use; so FP32 results equal llama2.c's bit for bit,
// whichever kernel runs.
//
// Scores kernels fill out (n) with q·K[j] from a transposed K tile k (headSize, bs).
// Several positions go through i together, and each is still summed in index order,
// exactly as one sequential dot product per position. AccumV kernels add Σ_j w[j]·V[j]
// into out from V rows (n, stride), several positions per pass over out, each element
// still accumulated in order of j.
//
// The names ending in Go are the portable kernels; kernels_amd64.go runs AVX2 versions of
// the F32, F16 and I8 ones where the CPU has them (same results, bit for bit).

func scoresF32Go(out, q, k []float32, bs int) {
	j := 0
	for ; j+4 <= len(out); j += 4 {
		var s0, s1, s2, s3 float32
		for i, x := range q {
			r := k[i*bs+j:][:4]
			s0 += float32(x * r[0])
			s1 += float32(x * r[1])
			s2 += float32(x * r[2])
			s3 += float32(x * r[3])
		}
		out[j], out[j+1], out[j+2], out[j+3] = s0, s1, s2, s3
	}
	for ; j < len(out); j++ {
		var s float32
		for i, x := range q {
			s += float32(x * k[i*bs+j])
		}
		out[j] = s
	}
}

func accumF32Go(out, w, v []float32, stride int) {
	hs, j := len(out), 0
	for ; j+4 <= len(w); j += 4 {
		w0, w1, w2, w3 := w[j], w[j+1], w[j+2], w[j+3]
		v0, v1, v2, v3 := v[j*stride:][:hs], v[(j+1)*stride:][:hs], v[(j+2)*stride:][:hs], v[(j+3)*stride:][:hs]
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
		vj := v[j*stride:][:hs]
		for i := range out {
			out[i] += float32(w[j] * vj[i])
		}
	}
}

// The FP16 kernels decode through tab, the half → float32 table.

func scoresF16Go(tab *[1 << 16]float32, out, q []float32, k []uint16, bs int) {
	j := 0
	for ; j+4 <= len(out); j += 4 {
		var s0, s1, s2, s3 float32
		for i, x := range q {
			r := k[i*bs+j:][:4]
			s0 += float32(x * tab[r[0]])
			s1 += float32(x * tab[r[1]])
			s2 += float32(x * tab[r[2]])
			s3 += float32(x * tab[r[3]])
		}
		out[j], out[j+1], out[j+2], out[j+3] = s0, s1, s2, s3
	}
	for ; j < len(out); j++ {
		var s float32
		for i, x := range q {
			s += float32(x * tab[k[i*bs+j]])
		}
		out[j] = s
	}
}

func accumF16Go(tab *[1 << 16]float32, out, w []float32, v []uint16, stride int) {
	hs, j := len(out), 0
	for ; j+4 <= len(w); j += 4 {
		w0, w1, w2, w3 := w[j], w[j+1], w[j+2], w[j+3]
		v0, v1, v2, v3 := v[j*stride:][:hs], v[(j+1)*stride:][:hs], v[(j+2)*stride:][:hs], v[(j+3)*stride:][:hs]
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
		vj := v[j*stride:][:hs]
		for i := range out {
			out[i] += float32(w[j] * tab[vj[i]])
		}
	}
}

// The Int8 and Int4 kernels sum over the integers and apply each row's scale once: Scores
// multiplies the integer dot product by sc[j] (scaleScores); AccumV folds sc[j] into the
// weight (scaleWeights).

// sumsI8Go sets out[j] = Σ_i q[i]·k[i·bs+j], the unscaled scores.
func sumsI8Go(out, q []float32, k []int8, bs int) {
	j := 0
	for ; j+4 <= len(out); j += 4 {
		var s0, s1, s2, s3 float32
		for i, x := range q {
			r := k[i*bs+j:][:4]
			s0 += float32(x * float32(r[0]))
			s1 += float32(x * float32(r[1]))
			s2 += float32(x * float32(r[2]))
			s3 += float32(x * float32(r[3]))
		}
		out[j], out[j+1], out[j+2], out[j+3] = s0, s1, s2, s3
	}
	for ; j < len(out); j++ {
		var s float32
		for i, x := range q {
			s += float32(x * float32(k[i*bs+j]))
		}
		out[j] = s
	}
}

// scaleScores multiplies each unscaled int score by its row's scale.
func scaleScores(out, sc []float32) {
	for j, s := range sc[:len(out)] {
		out[j] *= s
	}
}

// accumI8 accumulates with the weights times the scales, 64 positions at a time.
func accumI8(out, w []float32, v []int8, sc []float32) {
	var buf [64]float32
	for j0 := 0; j0 < len(w); j0 += len(buf) {
		accumI8W(out, scaleWeights(&buf, w, sc, j0), v[j0*len(out):], len(out))
	}
}

// scaleWeights fills buf with w[j]·sc[j] for the up to 64 positions from j0 and returns
// the filled part: the int kernels' weights, on the caller's stack.
func scaleWeights(buf *[64]float32, w, sc []float32, j0 int) []float32 {
	ws := buf[:min(len(buf), len(w)-j0)]
	for j := range ws {
		ws[j] = w[j0+j] * sc[j0+j]
	}
	return ws
}

// accumI8WGo does out[i] += Σ_j ws[j]·v[j·stride+i], ws already scaled.
func accumI8WGo(out, ws []float32, v []int8, stride int) {
	hs, j := len(out), 0
	for ; j+4 <= len(ws); j += 4 {
		w0, w1, w2, w3 := ws[j], ws[j+1], ws[j+2], ws[j+3]
		v0, v1, v2, v3 := v[j*stride:][:hs], v[(j+1)*stride:][:hs], v[(j+2)*stride:][:hs], v[(j+3)*stride:][:hs]
		for i := range out {
			o := out[i]
			o += float32(w0 * float32(v0[i]))
			o += float32(w1 * float32(v1[i]))
			o += float32(w2 * float32(v2[i]))
			o += float32(w3 * float32(v3[i]))
			out[i] = o
		}
	}
	for ; j < len(ws); j++ {
		vj := v[j*stride:][:hs]
		for i := range out {
			out[i] += float32(ws[j] * float32(vj[i]))
		}
	}
}

// The Int4 kernels read signed nibbles, two elements per byte (see pairs): a K tile is
// (headSize/2, bs) bytes, byte m of a position holding elements 2m (low nibble) and 2m+1;
// a V row is headSize/2 bytes, byte m holding elements m and m+headSize/2.

// lo4 and hi4 sign-extend the low and the high nibble of b.
func lo4(b byte) float32 { return float32(int8(b<<4) >> 4) }
func hi4(b byte) float32 { return float32(int8(b) >> 4) }

// sumsI4Go sets out[j] to the unscaled score of position j.
func sumsI4Go(out, q []float32, k []byte, bs int) {
	q = q[:len(q)/2*2]
	j := 0
	for ; j+4 <= len(out); j += 4 {
		var s0, s1, s2, s3 float32
		for m := 0; m < len(q); m += 2 {
			x, y := q[m], q[m+1]
			r := k[m/2*bs+j:][:4]
			s0 += float32(x * lo4(r[0]))
			s0 += float32(y * hi4(r[0]))
			s1 += float32(x * lo4(r[1]))
			s1 += float32(y * hi4(r[1]))
			s2 += float32(x * lo4(r[2]))
			s2 += float32(y * hi4(r[2]))
			s3 += float32(x * lo4(r[3]))
			s3 += float32(y * hi4(r[3]))
		}
		out[j], out[j+1], out[j+2], out[j+3] = s0, s1, s2, s3
	}
	for ; j < len(out); j++ {
		var s float32
		for m := 0; m < len(q); m += 2 {
			b := k[m/2*bs+j]
			s += float32(q[m] * lo4(b))
			s += float32(q[m+1] * hi4(b))
		}
		out[j] = s
	}
}

// accumI4 accumulates with the weights times the scales, 64 positions at a time.
func accumI4(out, w []float32, v []byte, sc []float32) {
	h2 := len(out) / 2
	var buf [64]float32
	for j0 := 0; j0 < len(w); j0 += len(buf) {
		accumI4W(out, scaleWeights(&buf, w, sc, j0), v[j0*h2:], h2)
	}
}

// accumI4WGo does lo[m] += Σ_j ws[j]·lo4(v[j·stride+m]) and hi[m] += Σ_j ws[j]·hi4(...).
func accumI4WGo(lo, hi, ws []float32, v []byte, stride int) {
	hi = hi[:len(lo)]
	for j, wj := range ws {
		vj := v[j*stride:][:len(lo)]
		for m, b := range vj {
			lo[m] += float32(wj * lo4(b))
			hi[m] += float32(wj * hi4(b))
		}
	}
}

// scaleFor is the symmetric scale that maps the largest magnitude of src to qmax. src
// must be finite. The magnitudes are compared as integers: for non-negative floats the bit
// patterns order like the values, and an integer max has no NaN case to branch on.
func scaleFor(src []float32, qmax float32) float32 {
	var m uint32
	for _, x := range src {
		m = max(m, math.Float32bits(x)&^(1<<31))
	}
	return math.Float32frombits(m) / qmax
}

// quantizer maps x to round(x/scale) clamped to ±qmax, 0 for every x when scale is 0. It
// works in float64 (x·(1/scale) is within 2^-52 of x/scale), so the only error that
// matters is the rounding to an integer: |q·scale - x| ≤ scale/2. The clamp is in integers
// (branch-free); for finite x up to scale·qmax it never bites.
type quantizer struct {
	inv  float64
	qmax int32
}

func newQuantizer(scale float32, qmax int32) quantizer {
	if scale == 0 {
		return quantizer{0, qmax}
	}
	return quantizer{1 / float64(scale), qmax}
}

func (z quantizer) q(x float32) int8 {
	return int8(max(-z.qmax, min(z.qmax, int32(math.RoundToEven(float64(x)*z.inv)))))
}
