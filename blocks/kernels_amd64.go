package blocks

import "golang.org/x/sys/cpu"

//go:generate go run gen_kernels.go

// useAVX2 selects the AVX2 kernels of kernels_amd64.s (FP16 also needs F16C). Tests turn
// it off to check the portable kernels on the same machine.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasF16C

// The assembly kernels, eight float32 lanes per vector (see gen_kernels.go). They read and
// write exactly the elements the Go wrappers below have bounds-checked.

//go:noescape
func scoresF32AVX2(out, q *float32, k *float32, hs, bs, chunks int)

//go:noescape
func scoresF16AVX2(out, q *float32, k *uint16, hs, bs, chunks int)

//go:noescape
func scoresI8AVX2(out, q *float32, k *int8, hs, bs, chunks int)

//go:noescape
func scoresI4AVX2(out, q *float32, k *byte, hs2, bs, chunks int)

//go:noescape
func accumF32AVX2(out, w *float32, v *float32, chunks, n, hs int)

//go:noescape
func accumF16AVX2(out, w *float32, v *uint16, chunks, n, hs int)

//go:noescape
func accumI8AVX2(out, w *float32, v *int8, chunks, n, hs int)

//go:noescape
func accumI4AVX2(out, w *float32, v *byte, chunks, n, stride int)

// Scores wrappers: the assembly fills the first 8·⌊n/8⌋ positions, the Go kernel the rest.
// The last K element the assembly reads is k[(hs-1)·bs + 8·chunks - 1], within the
// bounds check.

func scoresF32(out, q, k []float32, bs int) {
	c := len(out) / 8
	if !useAVX2 || c == 0 {
		scoresF32Go(out, q, k, bs)
		return
	}
	_ = k[(len(q)-1)*bs+len(out)-1]
	scoresF32AVX2(&out[0], &q[0], &k[0], len(q), bs, c)
	scoresF32Go(out[8*c:], q, k[8*c:], bs)
}

func scoresF16(tab *[1 << 16]float32, out, q []float32, k []uint16, bs int) {
	c := len(out) / 8
	if !useAVX2 || c == 0 {
		scoresF16Go(tab, out, q, k, bs)
		return
	}
	_ = k[(len(q)-1)*bs+len(out)-1]
	scoresF16AVX2(&out[0], &q[0], &k[0], len(q), bs, c)
	scoresF16Go(tab, out[8*c:], q, k[8*c:], bs)
}

func sumsI8(out, q []float32, k []int8, bs int) {
	c := len(out) / 8
	if !useAVX2 || c == 0 {
		sumsI8Go(out, q, k, bs)
		return
	}
	_ = k[(len(q)-1)*bs+len(out)-1]
	scoresI8AVX2(&out[0], &q[0], &k[0], len(q), bs, c)
	sumsI8Go(out[8*c:], q, k[8*c:], bs)
}

func sumsI4(out, q []float32, k []byte, bs int) {
	c := len(out) / 8
	if !useAVX2 || c == 0 {
		sumsI4Go(out, q, k, bs)
		return
	}
	_ = k[(len(q)/2-1)*bs+len(out)-1]
	scoresI4AVX2(&out[0], &q[0], &k[0], len(q)/2, bs, c)
	sumsI4Go(out[8*c:], q, k[8*c:], bs)
}

// AccumV wrappers: the assembly accumulates the first 8·⌊hs/8⌋ elements of out, the Go
// kernel the rest. The last V element read is v[(n-1)·hs + 8·chunks - 1].

func accumF32(out, w, v []float32) {
	hs, c := len(out), len(out)/8
	if !useAVX2 || c == 0 || len(w) == 0 {
		accumF32Go(out, w, v, hs)
		return
	}
	_ = v[(len(w)-1)*hs+hs-1]
	accumF32AVX2(&out[0], &w[0], &v[0], c, len(w), hs)
	if 8*c < hs {
		accumF32Go(out[8*c:], w, v[8*c:], hs)
	}
}

func accumF16(tab *[1 << 16]float32, out, w []float32, v []uint16) {
	hs, c := len(out), len(out)/8
	if !useAVX2 || c == 0 || len(w) == 0 {
		accumF16Go(tab, out, w, v, hs)
		return
	}
	_ = v[(len(w)-1)*hs+hs-1]
	accumF16AVX2(&out[0], &w[0], &v[0], c, len(w), hs)
	if 8*c < hs {
		accumF16Go(tab, out[8*c:], w, v[8*c:], hs)
	}
}

func accumI8W(out, ws []float32, v []int8, stride int) {
	hs, c := len(out), len(out)/8
	if !useAVX2 || c == 0 || len(ws) == 0 {
		accumI8WGo(out, ws, v, stride)
		return
	}
	_ = v[(len(ws)-1)*stride+hs-1]
	accumI8AVX2(&out[0], &ws[0], &v[0], c, len(ws), stride)
	if 8*c < hs {
		accumI8WGo(out[8*c:], ws, v[8*c:], stride)
	}
}

// accumI4W: the assembly takes the first 8·⌊hs2/8⌋ bytes of each V row (elements m and
// m+hs2 of out for those m), the Go kernel the remaining bytes.
func accumI4W(out, ws []float32, v []byte, stride int) {
	h2 := len(out) / 2
	c := h2 / 8
	if !useAVX2 || c == 0 || len(ws) == 0 {
		accumI4WGo(out[:h2], out[h2:], ws, v, stride)
		return
	}
	_ = v[(len(ws)-1)*stride+h2-1]
	_ = out[2*h2-1]
	accumI4AVX2(&out[0], &ws[0], &v[0], c, len(ws), stride)
	if 8*c < h2 {
		accumI4WGo(out[8*c:h2], out[h2+8*c:], ws, v[8*c:], stride)
	}
}
