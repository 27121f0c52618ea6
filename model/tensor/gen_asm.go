//go:build ignore

// gen_asm writes matmul_amd64.s: register-blocked AVX-512 kernels that compute an
// R x C tile of dot products (R weight rows against C activation rows). Run it with
// `go generate` in this directory; never edit the output by hand.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
)

var (
	wRegs = []string{"SI", "DI", "R8", "R9"}
	xRegs = []string{"R10", "R11", "R12", "R13", "R14", "R15"}
)

// Tile limits; they must match maxTileR, maxTileC and maxQ8TileC in matmul.go.
const (
	maxR    = 4
	maxF32C = 6
	maxQ8C  = 3
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
	g.storeAt(r, c, acc, "out+40(FP)", "ldo+48(FP)")
}

// storeAt is store with the out and ldo arguments at the given frame offsets.
func (g *gen) storeAt(r, c int, acc func(u, i, j int) int, out, ldo string) {
	g.p("MOVQ %s, DX", out)
	g.p("MOVQ %s, BX", ldo)
	g.p("SHLQ $2, BX")
	if r == 4 {
		g.store4(c, acc)
		return
	}
	for j := 0; j < c; j++ {
		if j > 0 {
			g.p("ADDQ BX, DX")
		}
		for i := 0; i < r; i++ {
			g.reduce(acc(0, i, j), 4*i)
		}
	}
}

// store4 reduces a 4-row tile with a transpose tree instead of one accumulator at a
// time: the four rows of a token end up in one 128-bit lane, which is stored whole
// (out rows are contiguous). Registers Z24-Z31 are free here.
func (g *gen) store4(c int, acc func(u, i, j int) int) {
	t := 24
	tmp := func() int { t = 24 + (t-23)%8; return t }
	// Per token: fold the four row accumulators into Z(acc(0,0,j)) whose every 128-bit
	// lane holds partial sums [row0, row1, row2, row3].
	for j := 0; j < c; j++ {
		a0, a1, a2, a3 := acc(0, 0, j), acc(0, 1, j), acc(0, 2, j), acc(0, 3, j)
		t0, t1, t2, t3 := tmp(), tmp(), tmp(), tmp()
		g.p("VUNPCKLPS Z%d, Z%d, Z%d", a1, a0, t0)
		g.p("VUNPCKHPS Z%d, Z%d, Z%d", a1, a0, t1)
		g.p("VUNPCKLPS Z%d, Z%d, Z%d", a3, a2, t2)
		g.p("VUNPCKHPS Z%d, Z%d, Z%d", a3, a2, t3)
		g.p("VADDPS Z%d, Z%d, Z%d", t1, t0, a0)
		g.p("VADDPS Z%d, Z%d, Z%d", t3, t2, a2)
		t0, t1 = tmp(), tmp()
		g.p("VUNPCKLPD Z%d, Z%d, Z%d", a2, a0, t0)
		g.p("VUNPCKHPD Z%d, Z%d, Z%d", a2, a0, t1)
		g.p("VADDPS Z%d, Z%d, Z%d", t1, t0, a0)
	}
	v := func(j int) int { return acc(0, 0, j) }
	// pair folds the lanes of tokens j and j+1 into v(j): [j.L0+j.L2, j.L1+j.L3, j+1 …].
	pair := func(j int) {
		t0, t1 := tmp(), tmp()
		g.p("VSHUFF32X4 $0x44, Z%d, Z%d, Z%d", v(j+1), v(j), t0)
		g.p("VSHUFF32X4 $0xEE, Z%d, Z%d, Z%d", v(j+1), v(j), t1)
		g.p("VADDPS Z%d, Z%d, Z%d", t1, t0, v(j))
	}
	g.p("LEAQ (BX)(BX*2), CX")
	j := 0
	for ; j+4 <= c; j += 4 {
		pair(j)
		pair(j + 2)
		t0, t1 := tmp(), tmp()
		g.p("VSHUFF32X4 $0x88, Z%d, Z%d, Z%d", v(j+2), v(j), t0)
		g.p("VSHUFF32X4 $0xDD, Z%d, Z%d, Z%d", v(j+2), v(j), t1)
		g.p("VADDPS Z%d, Z%d, Z%d", t1, t0, v(j))
		g.p("VMOVUPS X%d, (DX)", v(j))
		g.p("VEXTRACTF32X4 $1, Z%d, (DX)(BX*1)", v(j))
		g.p("VEXTRACTF32X4 $2, Z%d, (DX)(BX*2)", v(j))
		g.p("VEXTRACTF32X4 $3, Z%d, (DX)(CX*1)", v(j))
		g.p("LEAQ (DX)(BX*4), DX")
	}
	if j+2 <= c {
		pair(j)
		t0, t1 := tmp(), tmp()
		g.p("VSHUFF32X4 $0x88, Z%d, Z%d, Z%d", v(j), v(j), t0)
		g.p("VSHUFF32X4 $0xDD, Z%d, Z%d, Z%d", v(j), v(j), t1)
		g.p("VADDPS Z%d, Z%d, Z%d", t1, t0, v(j))
		g.p("VMOVUPS X%d, (DX)", v(j))
		g.p("VEXTRACTF32X4 $1, Z%d, (DX)(BX*1)", v(j))
		g.p("LEAQ (DX)(BX*2), DX")
		j += 2
	}
	if j < c {
		t0 := tmp()
		g.p("VEXTRACTF64X4 $1, Z%d, Y%d", v(j), t0)
		g.p("VADDPS Y%d, Y%d, Y%d", t0, v(j), v(j))
		g.p("VEXTRACTF32X4 $1, Y%d, X%d", v(j), t0)
		g.p("VADDPS X%d, X%d, X%d", t0, v(j), v(j))
		g.p("VMOVUPS X%d, (DX)", v(j))
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

// Registers of the Q8 kernels: every general-purpose register is taken.
var (
	q8WRegs = []string{"SI", "DI", "R8", "R9"}
	q8XRegs = []string{"R10", "R11", "R12"}
	q8SRegs = []string{"R13", "R14", "R15", "BX"}
)

// q8 emits tileQ8R<r>C<c>: like tileF32 with int8 weight rows, where each group of gs
// weights is summed into its own accumulators, then scaled into the row's accumulators:
// out[j*ldo+i] = Σ_g s[i*lds+g]·Σ_{l in g} w[i*ldw+l]·x[j*ldx+l]. gs is a multiple of 16.
func (g *gen) q8(r, c int) {
	nacc := r * c
	acc := func(_, i, j int) int { return i*c + j }
	grp := func(i, j int) int { return nacc + i*c + j }
	wz := func(i int) int { return 2*nacc + i }
	xz := 2*nacc + r
	if xz >= 30 {
		log.Fatalf("q8 tile %dx%d needs too many registers", r, c)
	}
	name := fmt.Sprintf("tileQ8R%dC%d", r, c)
	fmt.Fprintf(&g.b, "\n// func %s(w *int8, ldw int, x *float32, ldx int, groups int, gs int, out *float32, ldo int, s *float32, lds int)\n", name)
	fmt.Fprintf(&g.b, "TEXT ·%s(SB), NOSPLIT, $0-80\n", name)
	g.p("MOVQ w+0(FP), %s", q8WRegs[0])
	g.p("MOVQ ldw+8(FP), DX")
	for i := 1; i < r; i++ {
		g.p("LEAQ (%s)(DX*1), %s", q8WRegs[i-1], q8WRegs[i])
	}
	g.p("MOVQ x+16(FP), %s", q8XRegs[0])
	g.p("MOVQ ldx+24(FP), DX")
	g.p("SHLQ $2, DX")
	for j := 1; j < c; j++ {
		g.p("LEAQ (%s)(DX*1), %s", q8XRegs[j-1], q8XRegs[j])
	}
	g.p("MOVQ s+64(FP), %s", q8SRegs[0])
	g.p("MOVQ lds+72(FP), DX")
	g.p("SHLQ $2, DX")
	for i := 1; i < r; i++ {
		g.p("LEAQ (%s)(DX*1), %s", q8SRegs[i-1], q8SRegs[i])
	}
	// Q8 rows are consumed slowly enough that the hardware prefetcher falls behind; with a
	// spare register, prefetch the next block of r rows (contiguous, ldw = k) linearly at
	// the rate this block is consumed.
	pf := c < len(q8XRegs)
	if pf {
		g.p("MOVQ ldw+8(FP), DX")
		g.p("MOVQ %s, %s", q8WRegs[0], q8XRegs[2])
		for i := 0; i < r; i++ {
			g.p("ADDQ DX, %s", q8XRegs[2])
		}
	}
	for a := 0; a < nacc; a++ {
		g.p("VPXORD Z%d, Z%d, Z%d", a, a, a)
	}
	g.p("XORQ %s, %s", idx, idx)
	g.p("MOVQ groups+32(FP), DX")
	g.label(name + "_group")
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			g.p("VPXORD Z%d, Z%d, Z%d", grp(i, j), grp(i, j), grp(i, j))
		}
	}
	g.p("MOVQ gs+40(FP), %s", cnt)
	g.p("SHRQ $4, %s", cnt)
	g.label(name + "_chunk")
	if pf {
		g.p("PREFETCHT0 (%s)", q8XRegs[2])
		g.p("ADDQ $%d, %s", 16*r, q8XRegs[2])
	}
	for i := 0; i < r; i++ {
		g.p("VPMOVSXBD (%s)(%s*1), Z%d", q8WRegs[i], idx, wz(i))
		g.p("VCVTDQ2PS Z%d, Z%d", wz(i), wz(i))
	}
	for j := 0; j < c; j++ {
		g.p("VMOVUPS (%s)(%s*4), Z%d", q8XRegs[j], idx, xz)
		for i := 0; i < r; i++ {
			g.p("VFMADD231PS Z%d, Z%d, Z%d", wz(i), xz, grp(i, j))
		}
	}
	g.p("ADDQ $16, %s", idx)
	g.p("DECQ %s", cnt)
	g.p("JNZ %s_chunk", name)
	for i := 0; i < r; i++ {
		g.p("VBROADCASTSS (%s), Z%d", q8SRegs[i], wz(i))
		g.p("ADDQ $4, %s", q8SRegs[i])
		for j := 0; j < c; j++ {
			g.p("VFMADD231PS Z%d, Z%d, Z%d", grp(i, j), wz(i), acc(0, i, j))
		}
	}
	g.p("DECQ DX")
	g.p("JNZ %s_group", name)
	g.storeAt(r, c, acc, "out+48(FP)", "ldo+56(FP)")
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
	for r := 1; r <= maxR; r++ {
		for c := 1; c <= maxF32C; c++ {
			g.f32(r, c)
		}
	}
	for r := 1; r <= maxR; r++ {
		for c := 1; c <= maxQ8C; c++ {
			g.q8(r, c)
		}
	}
	g.axpy()
	if err := os.WriteFile("matmul_amd64.s", g.b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("tiles_amd64.go", decls(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// decls returns the Go declarations of the kernels and the tables that index them.
func decls() []byte {
	var b bytes.Buffer
	b.WriteString("// Code generated by gen_asm.go; DO NOT EDIT.\n\n//go:build !purego\n\npackage tensor\n")
	b.WriteString("\n//go:noescape\nfunc axpyAVX512(alpha float32, x *float32, y *float32, n int)\n")
	for r := 1; r <= maxR; r++ {
		for c := 1; c <= maxF32C; c++ {
			fmt.Fprintf(&b, "\n//go:noescape\nfunc tileF32R%dC%d(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)\n", r, c)
		}
		for c := 1; c <= maxQ8C; c++ {
			fmt.Fprintf(&b, "\n//go:noescape\nfunc tileQ8R%dC%d(w *int8, ldw int, x *float32, ldx int, groups int, gs int, out *float32, ldo int, s *float32, lds int)\n", r, c)
		}
	}
	table := func(name, typ, kind string, maxC int) {
		fmt.Fprintf(&b, "\n// %s[R][C] is the AVX-512 kernel for an R x C tile.\n", name)
		fmt.Fprintf(&b, "var %s = [%d][%d]%s{\n", name, maxR+1, maxC+1, typ)
		for r := 1; r <= maxR; r++ {
			fmt.Fprintf(&b, "\t%d: {", r)
			for c := 1; c <= maxC; c++ {
				if c > 1 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%d: tile%sR%dC%d", c, kind, r, c)
			}
			b.WriteString("},\n")
		}
		b.WriteString("}\n")
	}
	table("f32Tiles", "tileFunc", "F32", maxF32C)
	table("q8Tiles", "tileQ8Func", "Q8", maxQ8C)
	out, err := format.Source(b.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	return out
}
