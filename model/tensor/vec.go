package tensor

import (
	"fmt"
	"math"
)

// Dot returns Σ a[i]·b[i] accumulated in fp32 (SIMD lanes, summed at the end).
// a and b must have the same length.
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("tensor: Dot of lengths %d and %d", len(a), len(b)))
	}
	return dot(a, b)
}

// Axpy sets y += alpha·x. x and y must have the same length.
func Axpy(alpha float32, x, y []float32) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("tensor: Axpy of lengths %d and %d", len(x), len(y)))
	}
	axpy(alpha, x, y)
}

// RMSNorm sets out = weight·(x/rms(x)) exactly as llama2.c's rmsnorm: the sum of squares
// is accumulated sequentially in fp32. out may alias x; all three have the same length.
func RMSNorm(out, x, weight []float32) {
	if len(out) != len(x) || len(weight) != len(x) {
		panic(fmt.Sprintf("tensor: RMSNorm of lengths %d, %d, %d", len(out), len(x), len(weight)))
	}
	var ss float32
	for _, v := range x {
		ss += float32(v * v) // the conversion forbids fusing into an FMA
	}
	ss /= float32(len(x))
	ss += 1e-5
	ss = 1 / float32(math.Sqrt(float64(ss)))
	for j, v := range x {
		out[j] = weight[j] * float32(ss*v)
	}
}

// Softmax replaces x by its softmax as llama2.c computes it: subtract the max,
// exponentiate, divide by the sequential fp32 sum.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	maxv := x[0]
	for _, v := range x[1:] {
		if v > maxv {
			maxv = v
		}
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - maxv)))
		x[i] = e
		sum += e
	}
	for i := range x {
		x[i] /= sum
	}
}

// SiLU returns x·σ(x) as llama2.c computes it: x * (1 / (1 + expf(-x))).
func SiLU(x float32) float32 {
	return x * (1 / (1 + float32(math.Exp(float64(-x)))))
}

// dotGo is the portable Dot: four fp32 accumulators, summed at the end.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += float32(a[i] * b[i])
		s1 += float32(a[i+1] * b[i+1])
		s2 += float32(a[i+2] * b[i+2])
		s3 += float32(a[i+3] * b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += float32(a[i] * b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGo is the portable Axpy.
func axpyGo(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}
