//go:build ignore

// gen_asm writes matmul_amd64.s: register-blocked AVX-512 kernels that compute an
// R x C tile of dot products (R weight rows against C activation rows). Run it with
// `go generate` in this directory; never edit the output by hand.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
)

var (
	wRegs = []string{"SI", "DI", "R8", "R9"}
	xRegs = []string{"R10", "R11", "R12", "R13", "R14", "R15"}
)

const (
	idx = "AX" // byte offset into every row (f32); element index (q8)
	cnt = "CX" // loop counter
)

type gen struct{ b bytes.Buffer }

func (g *gen) p(format string, a ...any) { fmt.Fprintf(&g.b, "\t"+format+"\n", a...) }
func (g *gen) label(l string)            { fmt.Fprintf(&g.b, "%s:\n", l) }

// unroll picks how many accumulator sets a tile keeps so that small tiles still have
// enough independent FMA chains to cover the FMA latency.
func unroll(r, c int) int {
	switch {
	case r*c == 1:
		return 4
	case r*c <= 4:
		return 2
	case c == 1:
		return 2
	}
	return 1
}

// setupPointers loads the R weight-row and C activation-row base pointers.
func (g *gen) setupPointers(r, c int, wElem int) {
	g.p("MOVQ w+0(FP), %s", wRegs[0])
	if r > 1 {
		g.p("MOVQ ldw+8(FP), BX")
		if wElem == 4 {
			g.p("SHLQ $2, BX")
		}
		for i := 1; i < r; i++ {
			g.p("LEAQ (%s)(BX*1), %s", wRegs[i-1], wRegs[i])
		}
	}
	g.p("MOVQ x+16(FP), %s", xRegs[0])
	if c > 1 {
		g.p("MOVQ ldx+24(FP), BX")
		g.p("SHLQ $2, BX")
		for i := 1; i < c; i++ {
			g.p("LEAQ (%s)(BX*1), %s", xRegs[i-1], xRegs[i])
		}
	}
}

// reduce sums the 16 lanes of Z<acc> and stores the scalar at off(DX).
func (g *gen) reduce(acc int, off int) {
	g.p("VEXTRACTF64X4 $1, Z%d, Y30", acc)
	g.p("VADDPS Y30, Y%d, Y30", acc)
	g.p("VEXTRACTF32X4 $1, Y30, X31")
	g.p("VADDPS X31, X30, X30")
	g.p("VPERMILPS $0x4E, X30, X31")
	g.p("VADDPS X31, X30, X30")
	g.p("VPERMILPS $0xB1, X30, X31")
	g.p("VADDSS X31, X30, X30")
	g.p("VMOVSS X30, %d(DX)", off)
}

// store reduces the accumulators acc(0, r, c) and writes out[c*ldo + r].
func (g *gen) store(r, c int, acc func(u, i, j int) int) {
	g.p("MOVQ out+40(FP), DX")
	g.p("MOVQ ldo+48(FP), BX")
	g.p("SHLQ $2, BX")
	for j := 0; j < c; j++ {
		if j > 0 {
			g.p("ADDQ BX, DX")
		}
		for i := 0; i < r; i++ {
			g.reduce(acc(0, i, j), 4*i)
		}
	}
}

// f32 emits tileF32R<r>C<c>: out[j*ldo+i] = Σ_k w[i*ldw+k]·x[j*ldx+k] for i<r, j<c.
func (g *gen) f32(r, c int) {
	u := unroll(r, c)
	nacc := u * r * c
	acc := func(uu, i, j int) int { return uu*r*c + i*c + j }
	wz := func(i int) int { return nacc + i }
	xz := nacc + r
	if xz >= 30 {
		log.Fatalf("tile %dx%d unroll %d needs too many registers", r, c, u)
	}
	name := fmt.Sprintf("tileF32R%dC%d", r, c)
	fmt.Fprintf(&g.b, "\n// func %s(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)\n", name)
	fmt.Fprintf(&g.b, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	g.setupPointers(r, c, 4)
	for a := 0; a < nacc; a++ {
		g.p("VPXORD Z%d, Z%d, Z%d", a, a, a)
	}
	g.p("XORQ %s, %s", idx, idx)
	g.p("MOVQ k+32(FP), %s", cnt)
	shift := map[int]int{1: 4, 2: 5, 4: 6}[u]
	g.p("SHRQ $%d, %s", shift, cnt)
	g.p("JZ %s_rest", name)
	body := func(uu int, mask bool) {
		ld := "VMOVUPS"
		k := ""
		if mask {
			ld = "VMOVUPS.Z"
			k = " K1,"
		}
		for i := 0; i < r; i++ {
			g.p("%s %d(%s)(%s*1),%s Z%d", ld, 64*uu, wRegs[i], idx, k, wz(i))
		}
		for j := 0; j < c; j++ {
			g.p("%s %d(%s)(%s*1),%s Z%d", ld, 64*uu, xRegs[j], idx, k, xz)
			for i := 0; i < r; i++ {
				g.p("VFMADD231PS Z%d, Z%d, Z%d", wz(i), xz, acc(uu, i, j))
			}
		}
	}
	g.label(name + "_loop")
	for uu := 0; uu < u; uu++ {
		body(uu, false)
	}
	g.p("ADDQ $%d, %s", 64*u, idx)
	g.p("DECQ %s", cnt)
	g.p("JNZ %s_loop", name)
	g.label(name + "_rest")
	// Whole 16-float chunks left over from the unrolled loop, one at a time.
	g.p("MOVQ k+32(FP), %s", cnt)
	g.p("SHRQ $4, %s", cnt)
	g.p("ANDQ $%d, %s", u-1, cnt)
	g.p("JZ %s_tail", name)
	g.label(name + "_one")
	body(0, false)
	g.p("ADDQ $64, %s", idx)
	g.p("DECQ %s", cnt)
	g.p("JNZ %s_one", name)
	g.label(name + "_tail")
	g.p("MOVQ k+32(FP), %s", cnt)
	g.p("ANDQ $15, %s", cnt)
	g.p("JZ %s_sum", name)
	g.p("MOVL $1, BX")
	g.p("SHLL CX, BX")
	g.p("DECL BX")
	g.p("KMOVW BX, K1")
	body(0, true)
	g.label(name + "_sum")
	for uu := 1; uu < u; uu++ {
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				g.p("VADDPS Z%d, Z%d, Z%d", acc(uu, i, j), acc(0, i, j), acc(0, i, j))
			}
		}
	}
	g.store(r, c, acc)
	g.p("VZEROUPPER")
	g.p("RET")
}

// axpy emits axpyAVX512: y[i] += alpha·x[i] for i < n.
func (g *gen) axpy() {
	g.b.WriteString(`
// func axpyAVX512(alpha float32, x *float32, y *float32, n int)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Z31
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	XORQ AX, AX
	MOVQ n+24(FP), CX
	SHRQ $6, CX
	JZ axpy_rest
axpy_loop:
	VMOVUPS 0(SI)(AX*1), Z0
	VMOVUPS 64(SI)(AX*1), Z1
	VMOVUPS 128(SI)(AX*1), Z2
	VMOVUPS 192(SI)(AX*1), Z3
	VFMADD213PS 0(DI)(AX*1), Z31, Z0
	VFMADD213PS 64(DI)(AX*1), Z31, Z1
	VFMADD213PS 128(DI)(AX*1), Z31, Z2
	VFMADD213PS 192(DI)(AX*1), Z31, Z3
	VMOVUPS Z0, 0(DI)(AX*1)
	VMOVUPS Z1, 64(DI)(AX*1)
	VMOVUPS Z2, 128(DI)(AX*1)
	VMOVUPS Z3, 192(DI)(AX*1)
	ADDQ $256, AX
	DECQ CX
	JNZ axpy_loop
axpy_rest:
	MOVQ n+24(FP), CX
	SHRQ $4, CX
	ANDQ $3, CX
	JZ axpy_tail
axpy_one:
	VMOVUPS 0(SI)(AX*1), Z0
	VFMADD213PS 0(DI)(AX*1), Z31, Z0
	VMOVUPS Z0, 0(DI)(AX*1)
	ADDQ $64, AX
	DECQ CX
	JNZ axpy_one
axpy_tail:
	MOVQ n+24(FP), CX
	ANDQ $15, CX
	JZ axpy_done
	MOVL $1, BX
	SHLL CX, BX
	DECL BX
	KMOVW BX, K1
	VMOVUPS.Z 0(SI)(AX*1), K1, Z0
	VMOVUPS.Z 0(DI)(AX*1), K1, Z1
	VFMADD231PS Z0, Z31, Z1
	VMOVUPS Z1, K1, 0(DI)(AX*1)
axpy_done:
	VZEROUPPER
	RET
`)
}

func main() {
	g := &gen{}
	g.b.WriteString("// Code generated by gen_asm.go; DO NOT EDIT.\n\n//go:build !purego\n\n#include \"textflag.h\"\n")
	for r := 1; r <= 4; r++ {
		for c := 1; c <= 6; c++ {
			g.f32(r, c)
		}
	}
	g.axpy()
	if err := os.WriteFile("matmul_amd64.s", g.b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
