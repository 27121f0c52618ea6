//go:build !purego

package tensor

// Declarations of the generated kernels in matmul_amd64.s.

//go:noescape
func axpyAVX512(alpha float32, x *float32, y *float32, n int)

//go:noescape
func tileF32R1C1(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R1C2(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R1C3(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R1C4(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R1C5(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R1C6(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R2C1(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R2C2(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R2C3(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R2C4(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R2C5(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R2C6(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R3C1(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R3C2(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R3C3(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R3C4(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R3C5(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R3C6(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R4C1(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R4C2(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R4C3(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R4C4(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R4C5(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)

//go:noescape
func tileF32R4C6(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)
