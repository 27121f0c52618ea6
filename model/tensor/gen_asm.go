//go:build ignore

// gen_asm writes matmul_amd64.s and tiles_amd64.go: register-blocked kernels that compute
// an R x C tile of dot products (R weight rows against C activation rows), for AVX-512
// and for AVX2+FMA, plus axpy. Run it with `go generate` in this directory; never edit
// the output by hand.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
	"strings"
)

// isa describes one instruction set the kernels are generated for.
type isa struct {
	name   string // suffix of kernel names and of the kernel set: "AVX512", "AVX2"
	v      string // vector register prefix: "Z" or "Y"
	bytes  int    // vector width in bytes
	lanes  int    // float32 lanes per vector
	regs   int    // vector registers a tile may use; the rest are reduction temps
	zero   string // zeroing instruction
	maxR   int    // weight rows per tile
	maxC   int    // tokens per fp32 tile
	maxQ8C int    // tokens per Q8 tile
	q8R    int    // weight rows per Q8 tile of more than one token
	t0, t1 int    // two temporaries for reductions and the AVX2 tail mask (t1)
}

var (
	avx512 = isa{name: "AVX512", v: "Z", bytes: 64, lanes: 16, regs: 30,
		zero: "VPXORD", maxR: 4, maxC: 6, maxQ8C: 6, q8R: 2, t0: 30, t1: 31}
	avx2 = isa{name: "AVX2", v: "Y", bytes: 32, lanes: 8, regs: 14,
		zero: "VXORPS", maxR: 4, maxC: 2, maxQ8C: 1, q8R: 4, t0: 14, t1: 15}
)

// General-purpose registers of the f32 tiles: weight rows, token rows, AX = byte offset,
// CX = loop counter, BX/DX scratch. (Q8 tiles hand theirs out in q8.)
var (
	wRegs = []string{"SI", "DI", "R8", "R9"}
	xRegs = []string{"R10", "R11", "R12", "R13", "R14", "R15"}
)

const (
	idx = "AX"
	cnt = "CX"
)

// hasQ8 reports whether the Q8 tile r x c is generated: one token for every row count
// (the matvec), more tokens only for q8R rows (each tile needs 2rc accumulators).
func (in isa) hasQ8(r, c int) bool { return c == 1 || r <= in.q8R }

type gen struct {
	b   bytes.Buffer
	isa isa
}

func (g *gen) p(format string, a ...any) { fmt.Fprintf(&g.b, "\t"+format+"\n", a...) }
func (g *gen) label(l string)            { fmt.Fprintf(&g.b, "%s:\n", l) }

// V names vector register n at the full width of the instruction set.
func (g *gen) V(n int) string { return fmt.Sprintf("%s%d", g.isa.v, n) }

func log2(n int) int {
	s := 0
	for 1<<s < n {
		s++
	}
	return s
}

// setupPointers loads the r weight-row and c activation-row base pointers.
func (g *gen) setupPointers(r, c int) {
	g.p("MOVQ w+0(FP), %s", wRegs[0])
	if r > 1 {
		g.p("MOVQ ldw+8(FP), BX")
		g.p("SHLQ $2, BX")
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

// reduce sums the lanes of vector acc and stores the scalar at off(DX). The order of the
// additions is the one the 4-row stores use (store4AVX512, store4AVX2), so that every
// tile shape, and hence every batch size, gives the same bits for the same row and token.
func (g *gen) reduce(acc int, off int) {
	t0, t1 := g.isa.t0, g.isa.t1
	if g.isa.bytes == 64 {
		// Within each 128-bit lane (e0+e2)+(e1+e3), then (L0+L2)+(L1+L3).
		g.p("VPERMILPS $0x4E, Z%d, Z%d", acc, t0)
		g.p("VADDPS Z%d, Z%d, Z%d", t0, acc, t0)
		g.p("VPERMILPS $0xB1, Z%d, Z%d", t0, t1)
		g.p("VADDPS Z%d, Z%d, Z%d", t1, t0, t0)
		g.p("VEXTRACTF64X4 $1, Z%d, Y%d", t0, t1)
		g.p("VADDPS Y%d, Y%d, Y%d", t1, t0, t0)
		g.p("VEXTRACTF32X4 $1, Y%d, X%d", t0, t1)
	} else {
		// Within each 128-bit lane (e0+e1)+(e2+e3), then L0+L1.
		g.p("VHADDPS Y%d, Y%d, Y%d", acc, acc, t0)
		g.p("VHADDPS Y%d, Y%d, Y%d", t0, t0, t0)
		g.p("VEXTRACTF128 $1, Y%d, X%d", t0, t1)
	}
	g.p("VADDSS X%d, X%d, X%d", t1, t0, t0)
	g.p("VMOVSS X%d, %d(DX)", t0, off)
}

// storeAt reduces the accumulators acc(0, i, j) and writes out[j*ldo + i]; out and ldo
// name the frame slots of those arguments.
func (g *gen) storeAt(r, c int, acc func(u, i, j int) int, out, ldo string) {
	g.p("MOVQ %s, DX", out)
	g.p("MOVQ %s, BX", ldo)
	g.p("SHLQ $2, BX")
	switch {
	case r == 4 && g.isa.bytes == 64:
		g.store4AVX512(c, acc)
		return
	case r == 4:
		g.store4AVX2(c, acc)
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

// store4AVX512 reduces a 4-row tile with a transpose tree instead of one accumulator at a
// time: the four rows of a token end up in one 128-bit lane, which is stored whole
// (out rows are contiguous). Registers Z24-Z31 are free here.
func (g *gen) store4AVX512(c int, acc func(u, i, j int) int) {
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

// store4AVX2 reduces a 4-row tile per token with horizontal adds, so that the token's
// four sums land in one XMM register that is stored whole.
func (g *gen) store4AVX2(c int, acc func(u, i, j int) int) {
	t0, t1 := g.isa.t0, g.isa.t1
	for j := 0; j < c; j++ {
		if j > 0 {
			g.p("ADDQ BX, DX")
		}
		a0, a1, a2, a3 := acc(0, 0, j), acc(0, 1, j), acc(0, 2, j), acc(0, 3, j)
		g.p("VHADDPS Y%d, Y%d, Y%d", a1, a0, t0)
		g.p("VHADDPS Y%d, Y%d, Y%d", a3, a2, t1)
		g.p("VHADDPS Y%d, Y%d, Y%d", t1, t0, t0)
		g.p("VEXTRACTF128 $1, Y%d, X%d", t0, t1)
		g.p("VADDPS X%d, X%d, X%d", t1, t0, t0)
		g.p("VMOVUPS X%d, (DX)", t0)
	}
}

// loadTailMask prepares the masked loads of the last k % lanes floats, whose count is
// in CX: K1 for AVX-512, the vector register t1 for AVX2.
func (g *gen) loadTailMask() {
	if g.isa.bytes == 64 {
		g.p("MOVL $1, BX")
		g.p("SHLL CX, BX")
		g.p("DECL BX")
		g.p("KMOVW BX, K1")
		return
	}
	// tailMaskAVX2 is eight -1 then eight 0: loading at 32-4n bytes gives n ones.
	g.p("LEAQ tailMaskAVX2<>+32(SB), BX")
	g.p("SHLQ $2, CX")
	g.p("SUBQ CX, BX")
	g.p("VMOVDQU (BX), Y%d", g.isa.t1)
}

// maskedLoad loads vector dst from mem, zero beyond the tail.
func (g *gen) maskedLoad(mem string, dst int) {
	if g.isa.bytes == 64 {
		g.p("VMOVUPS.Z %s, K1, Z%d", mem, dst)
	} else {
		g.p("VMASKMOVPS %s, Y%d, Y%d", mem, g.isa.t1, dst)
	}
}

// f32 emits tileF32R<r>C<c><isa>: out[j*ldo+i] = Σ_k w[i*ldw+k]·x[j*ldx+k] for i<r, j<c,
// with one accumulator per output, so that each output element is summed in the same
// order whatever the tile shape (t = 1 is memory-bound, it needs no more FMA chains).
func (g *gen) f32(r, c int) {
	g.f32Unrolled(fmt.Sprintf("tileF32R%dC%d%s", r, c, g.isa.name), r, c, 1)
}

// f32Unrolled emits an r x c tile kernel called name that keeps u accumulator sets.
func (g *gen) f32Unrolled(name string, r, c, u int) {
	in := g.isa
	nacc := u * r * c
	acc := func(uu, i, j int) int { return uu*r*c + i*c + j }
	wz := func(i int) int { return nacc + i }
	xz := nacc + r
	if xz >= in.regs {
		log.Fatalf("%s tile %dx%d unroll %d needs too many registers", in.name, r, c, u)
	}
	fmt.Fprintf(&g.b, "\n// func %s(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)\n", name)
	fmt.Fprintf(&g.b, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	g.setupPointers(r, c)
	for a := 0; a < nacc; a++ {
		g.p("%s %s, %s, %s", in.zero, g.V(a), g.V(a), g.V(a))
	}
	g.p("XORQ %s, %s", idx, idx)
	g.p("MOVQ k+32(FP), %s", cnt)
	g.p("SHRQ $%d, %s", log2(in.lanes*u), cnt)
	g.p("JZ %s_rest", name)
	body := func(uu int, mask bool) {
		for i := 0; i < r; i++ {
			mem := fmt.Sprintf("%d(%s)(%s*1)", in.bytes*uu, wRegs[i], idx)
			if mask {
				g.maskedLoad(mem, wz(i))
			} else {
				g.p("VMOVUPS %s, %s", mem, g.V(wz(i)))
			}
		}
		for j := 0; j < c; j++ {
			mem := fmt.Sprintf("%d(%s)(%s*1)", in.bytes*uu, xRegs[j], idx)
			if mask {
				g.maskedLoad(mem, xz)
			} else {
				g.p("VMOVUPS %s, %s", mem, g.V(xz))
			}
			for i := 0; i < r; i++ {
				g.p("VFMADD231PS %s, %s, %s", g.V(wz(i)), g.V(xz), g.V(acc(uu, i, j)))
			}
		}
	}
	g.label(name + "_loop")
	for uu := 0; uu < u; uu++ {
		body(uu, false)
	}
	g.p("ADDQ $%d, %s", in.bytes*u, idx)
	g.p("DECQ %s", cnt)
	g.p("JNZ %s_loop", name)
	g.label(name + "_rest")
	if u > 1 {
		// Whole vectors left over from the unrolled loop, one at a time.
		g.p("MOVQ k+32(FP), %s", cnt)
		g.p("SHRQ $%d, %s", log2(in.lanes), cnt)
		g.p("ANDQ $%d, %s", u-1, cnt)
		g.p("JZ %s_tail", name)
		g.label(name + "_one")
		body(0, false)
		g.p("ADDQ $%d, %s", in.bytes, idx)
		g.p("DECQ %s", cnt)
		g.p("JNZ %s_one", name)
		g.label(name + "_tail")
	}
	g.p("MOVQ k+32(FP), %s", cnt)
	g.p("ANDQ $%d, %s", in.lanes-1, cnt)
	g.p("JZ %s_sum", name)
	g.loadTailMask()
	body(0, true)
	g.label(name + "_sum")
	for uu := 1; uu < u; uu++ {
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				g.p("VADDPS %s, %s, %s", g.V(acc(uu, i, j)), g.V(acc(0, i, j)), g.V(acc(0, i, j)))
			}
		}
	}
	g.storeAt(r, c, acc, "out+40(FP)", "ldo+48(FP)")
	g.p("VZEROUPPER")
	g.p("RET")
}

// q8 emits tileQ8R<r>C<c><isa>: like f32 with int8 weight rows, where each group of gs
// weights is summed into its own accumulators, then scaled into the row's accumulators:
// out[j*ldo+i] = Σ_g s[i*lds+g]·Σ_{l in g} w[i*ldw+l]·x[j*ldx+l]. gs is a multiple of
// the lane count.
func (g *gen) q8(r, c int) {
	in := g.isa
	nacc := r * c
	acc := func(_, i, j int) int { return i*c + j }
	grp := func(i, j int) int { return nacc + i*c + j }
	wz := func(i int) int { return 2*nacc + i }
	xz := 2*nacc + r
	if xz >= in.regs {
		log.Fatalf("%s q8 tile %dx%d needs too many registers", in.name, r, c)
	}
	name := fmt.Sprintf("tileQ8R%dC%d%s", r, c, in.name)
	fmt.Fprintf(&g.b, "\n// func %s(w *int8, ldw int, x *float32, ldx int, groups int, gs int, out *float32, ldo int, s *float32, lds int)\n", name)
	fmt.Fprintf(&g.b, "TEXT ·%s(SB), NOSPLIT, $0-80\n", name)
	// AX, CX and DX are the offset and the two loop counters; the rest are handed out
	// in order: weight rows, token rows, scale rows, then the prefetch pointer.
	free := []string{"SI", "DI", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15", "BX"}
	take := func(n int) []string {
		if n > len(free) {
			log.Fatalf("%s q8 tile %dx%d needs too many general registers", in.name, r, c)
		}
		regs := free[:n]
		free = free[n:]
		return regs
	}
	wr, xr, sr := take(r), take(c), take(r)
	g.p("MOVQ w+0(FP), %s", wr[0])
	g.p("MOVQ ldw+8(FP), DX")
	for i := 1; i < r; i++ {
		g.p("LEAQ (%s)(DX*1), %s", wr[i-1], wr[i])
	}
	g.p("MOVQ x+16(FP), %s", xr[0])
	g.p("MOVQ ldx+24(FP), DX")
	g.p("SHLQ $2, DX")
	for j := 1; j < c; j++ {
		g.p("LEAQ (%s)(DX*1), %s", xr[j-1], xr[j])
	}
	g.p("MOVQ s+64(FP), %s", sr[0])
	g.p("MOVQ lds+72(FP), DX")
	g.p("SHLQ $2, DX")
	for i := 1; i < r; i++ {
		g.p("LEAQ (%s)(DX*1), %s", sr[i-1], sr[i])
	}
	// A Q8 matvec consumes its rows slowly enough that the hardware prefetcher falls
	// behind (4 GB/s on the 32000x768 classifier); prefetch the next block of r rows
	// (contiguous, ldw = k) linearly at the rate this block is consumed. Batched tiles
	// reuse the block for every token and do not need it.
	pf := ""
	if c == 1 {
		pf = take(1)[0]
		g.p("MOVQ ldw+8(FP), DX")
		g.p("MOVQ %s, %s", wr[0], pf)
		for i := 0; i < r; i++ {
			g.p("ADDQ DX, %s", pf)
		}
	}
	for a := 0; a < nacc; a++ {
		g.p("%s %s, %s, %s", in.zero, g.V(a), g.V(a), g.V(a))
	}
	g.p("XORQ %s, %s", idx, idx)
	g.p("MOVQ groups+32(FP), DX")
	g.label(name + "_group")
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			g.p("%s %s, %s, %s", in.zero, g.V(grp(i, j)), g.V(grp(i, j)), g.V(grp(i, j)))
		}
	}
	g.p("MOVQ gs+40(FP), %s", cnt)
	g.p("SHRQ $%d, %s", log2(in.lanes), cnt)
	g.label(name + "_chunk")
	if pf != "" {
		g.p("PREFETCHT0 (%s)", pf)
		g.p("ADDQ $%d, %s", in.lanes*r, pf)
	}
	for i := 0; i < r; i++ {
		g.p("VPMOVSXBD (%s)(%s*1), %s", wr[i], idx, g.V(wz(i)))
		g.p("VCVTDQ2PS %s, %s", g.V(wz(i)), g.V(wz(i)))
	}
	for j := 0; j < c; j++ {
		g.p("VMOVUPS (%s)(%s*4), %s", xr[j], idx, g.V(xz))
		for i := 0; i < r; i++ {
			g.p("VFMADD231PS %s, %s, %s", g.V(wz(i)), g.V(xz), g.V(grp(i, j)))
		}
	}
	g.p("ADDQ $%d, %s", in.lanes, idx)
	g.p("DECQ %s", cnt)
	g.p("JNZ %s_chunk", name)
	for i := 0; i < r; i++ {
		g.p("VBROADCASTSS (%s), %s", sr[i], g.V(wz(i)))
		g.p("ADDQ $4, %s", sr[i])
		for j := 0; j < c; j++ {
			g.p("VFMADD231PS %s, %s, %s", g.V(grp(i, j)), g.V(wz(i)), g.V(acc(0, i, j)))
		}
	}
	g.p("DECQ DX")
	g.p("JNZ %s_group", name)
	g.storeAt(r, c, acc, "out+48(FP)", "ldo+56(FP)")
	g.p("VZEROUPPER")
	g.p("RET")
}

// axpy emits axpy<isa>: y[i] += alpha·x[i] for i < n, four vectors per iteration.
func (g *gen) axpy() {
	in := g.isa
	name := "axpy" + in.name
	a := in.t0 // alpha broadcast
	fmt.Fprintf(&g.b, "\n// func %s(alpha float32, x *float32, y *float32, n int)\n", name)
	fmt.Fprintf(&g.b, "TEXT ·%s(SB), NOSPLIT, $0-32\n", name)
	g.p("VBROADCASTSS alpha+0(FP), %s", g.V(a))
	g.p("MOVQ x+8(FP), SI")
	g.p("MOVQ y+16(FP), DI")
	g.p("XORQ AX, AX")
	g.p("MOVQ n+24(FP), CX")
	g.p("SHRQ $%d, CX", log2(4*in.lanes))
	g.p("JZ %s_rest", name)
	g.label(name + "_loop")
	for i := 0; i < 4; i++ {
		g.p("VMOVUPS %d(SI)(AX*1), %s", i*in.bytes, g.V(i))
	}
	for i := 0; i < 4; i++ {
		g.p("VFMADD213PS %d(DI)(AX*1), %s, %s", i*in.bytes, g.V(a), g.V(i))
	}
	for i := 0; i < 4; i++ {
		g.p("VMOVUPS %s, %d(DI)(AX*1)", g.V(i), i*in.bytes)
	}
	g.p("ADDQ $%d, AX", 4*in.bytes)
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_rest")
	g.p("MOVQ n+24(FP), CX")
	g.p("SHRQ $%d, CX", log2(in.lanes))
	g.p("ANDQ $3, CX")
	g.p("JZ %s_tail", name)
	g.label(name + "_one")
	g.p("VMOVUPS 0(SI)(AX*1), %s", g.V(0))
	g.p("VFMADD213PS 0(DI)(AX*1), %s, %s", g.V(a), g.V(0))
	g.p("VMOVUPS %s, 0(DI)(AX*1)", g.V(0))
	g.p("ADDQ $%d, AX", in.bytes)
	g.p("DECQ CX")
	g.p("JNZ %s_one", name)
	g.label(name + "_tail")
	g.p("MOVQ n+24(FP), CX")
	g.p("ANDQ $%d, CX", in.lanes-1)
	g.p("JZ %s_done", name)
	g.loadTailMask()
	g.maskedLoad("0(SI)(AX*1)", 0)
	g.maskedLoad("0(DI)(AX*1)", 1)
	g.p("VFMADD231PS %s, %s, %s", g.V(0), g.V(a), g.V(1))
	if in.bytes == 64 {
		g.p("VMOVUPS Z1, K1, 0(DI)(AX*1)")
	} else {
		g.p("VMASKMOVPS Y1, Y%d, 0(DI)(AX*1)", in.t1)
	}
	g.label(name + "_done")
	g.p("VZEROUPPER")
	g.p("RET")
}

func main() {
	g := &gen{}
	g.b.WriteString("// Code generated by gen_asm.go; DO NOT EDIT.\n\n//go:build !purego\n\n#include \"textflag.h\"\n")
	g.b.WriteString("\n// tailMaskAVX2: eight -1 then eight 0 (int32).\n")
	for i := 0; i < 16; i++ {
		v := "$0xffffffff"
		if i >= 8 {
			v = "$0"
		}
		fmt.Fprintf(&g.b, "DATA tailMaskAVX2<>+%d(SB)/4, %s\n", 4*i, v)
	}
	g.b.WriteString("GLOBL tailMaskAVX2<>(SB), RODATA|NOPTR, $64\n")
	for _, in := range []isa{avx512, avx2} {
		g.isa = in
		for r := 1; r <= in.maxR; r++ {
			for c := 1; c <= in.maxC; c++ {
				g.f32(r, c)
			}
			for c := 1; c <= in.maxQ8C; c++ {
				if in.hasQ8(r, c) {
					g.q8(r, c)
				}
			}
		}
		g.axpy()
		// Dot: a 1 x 1 tile with four accumulators (latency-bound otherwise).
		g.f32Unrolled("dot"+in.name, 1, 1, 4)
	}
	if err := os.WriteFile("matmul_amd64.s", g.b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("tiles_amd64.go", decls(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// decls returns the Go declarations of the kernels and one kernelSet per isa.
func decls() []byte {
	var b bytes.Buffer
	b.WriteString("// Code generated by gen_asm.go; DO NOT EDIT.\n\n//go:build !purego\n\npackage tensor\n")
	for _, in := range []isa{avx512, avx2} {
		fmt.Fprintf(&b, "\n//go:noescape\nfunc axpy%s(alpha float32, x *float32, y *float32, n int)\n", in.name)
		fmt.Fprintf(&b, "\n//go:noescape\nfunc dot%s(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)\n", in.name)
		for r := 1; r <= in.maxR; r++ {
			for c := 1; c <= in.maxC; c++ {
				fmt.Fprintf(&b, "\n//go:noescape\nfunc tileF32R%dC%d%s(w *float32, ldw int, x *float32, ldx int, k int, out *float32, ldo int)\n", r, c, in.name)
			}
			for c := 1; c <= in.maxQ8C; c++ {
				if !in.hasQ8(r, c) {
					continue
				}
				fmt.Fprintf(&b, "\n//go:noescape\nfunc tileQ8R%dC%d%s(w *int8, ldw int, x *float32, ldx int, groups int, gs int, out *float32, ldo int, s *float32, lds int)\n", r, c, in.name)
			}
		}
	}
	table := func(kind, isaName string, maxR, maxC int, has func(r, c int) bool) string {
		var t strings.Builder
		for r := 1; r <= maxR; r++ {
			fmt.Fprintf(&t, "\t\t%d: {", r)
			sep := ""
			for c := 1; c <= maxC; c++ {
				if has(r, c) {
					fmt.Fprintf(&t, "%s%d: tile%sR%dC%d%s", sep, c, kind, r, c, isaName)
					sep = ", "
				}
			}
			t.WriteString("},\n")
		}
		return t.String()
	}
	all := func(r, c int) bool { return true }
	for _, in := range []isa{avx512, avx2} {
		fmt.Fprintf(&b, "\n// kernels%s holds the %s kernels.\n", in.name, in.name)
		fmt.Fprintf(&b, "var kernels%s = kernelSet{\n\tname: %q, lanes: %d, maxR: %d, maxC: %d, maxQ8C: %d, q8R: %d,\n",
			in.name, in.name, in.lanes, in.maxR, in.maxC, in.maxQ8C, in.q8R)
		fmt.Fprintf(&b, "\taxpy: axpy%s,\n", in.name)
		fmt.Fprintf(&b, "\tf32: [maxTileR + 1][maxTileC + 1]tileFunc{\n%s\t},\n", table("F32", in.name, in.maxR, in.maxC, all))
		fmt.Fprintf(&b, "\tq8: [maxTileR + 1][maxQ8TileC + 1]tileQ8Func{\n%s\t},\n}\n", table("Q8", in.name, in.maxR, in.maxQ8C, in.hasQ8))
	}
	out, err := format.Source(b.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	return out
}
