//go:build !amd64

package blocks

// Without assembly every kernel is the portable one.

var useAVX2 = false

func scoresF32(out, q, k []float32, bs int) { scoresF32Go(out, q, k, bs) }

func scoresF16(tab *[1 << 16]float32, out, q []float32, k []uint16, bs int) {
	scoresF16Go(tab, out, q, k, bs)
}

func sumsI8(out, q []float32, k []int8, bs int) { sumsI8Go(out, q, k, bs) }

func accumF32(out, w, v []float32) { accumF32Go(out, w, v, len(out)) }

func accumF16(tab *[1 << 16]float32, out, w []float32, v []uint16) {
	accumF16Go(tab, out, w, v, len(out))
}

func accumI8W(out, ws []float32, v []int8, stride int) { accumI8WGo(out, ws, v, stride) }

func sumsI4(out, q []float32, k []byte, bs int) { sumsI4Go(out, q, k, bs) }

func accumI4W(out, ws []float32, v []byte, stride int) {
	accumI4WGo(out[:len(out)/2], out[len(out)/2:], ws, v, stride)
}
