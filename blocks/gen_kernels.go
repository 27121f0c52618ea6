//go:build ignore

// gen_kernels writes kernels_amd64.s: the AVX2 attention kernels for FP32, FP16 (F16C),
// Int8 and Int4 blocks. Run `go generate` in this directory; never edit the output by hand.
//
// Every kernel keeps the order of run.c's sums: Scores puts eight positions in the lanes of
// a vector and adds q[i]·K[i] for i = 0, 1, 2, ... (a transposed K tile makes K[i] of eight
// positions one load); AccumV puts eight elements of out in the lanes and adds w[j]·V[j]
// for j = 0, 1, 2, .... Products and sums are separate VMULPS and VADDPS, never an FMA, so
// each lane rounds exactly as the scalar Go code does.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
)

// elem describes how one stored type becomes eight float32 lanes.
type elem struct {
	name  string // kernel suffix and Go element type
	gotyp string
	size  int // bytes per element
}

var elems = []elem{{"F32", "float32", 4}, {"F16", "uint16", 2}, {"I8", "int8", 1}}

type gen struct{ b bytes.Buffer }

func (g *gen) p(format string, args ...any) { fmt.Fprintf(&g.b, format+"\n", args...) }

// mul emits dst = bcast · (eight elements at off(ptr)), converting through tmp if needed.
func (g *gen) mul(e elem, off int, ptr, bcast, tmp, dst string) {
	switch e.name {
	case "F32":
		g.p("\tVMULPS %d(%s), %s, %s", off, ptr, bcast, dst)
		return
	case "F16":
		g.p("\tVCVTPH2PS %d(%s), %s", off, ptr, tmp)
	case "I8":
		g.p("\tVPMOVSXBD %d(%s), %s", off, ptr, tmp)
		g.p("\tVCVTDQ2PS %s, %s", tmp, tmp)
	}
	g.p("\tVMULPS %s, %s, %s", tmp, bcast, dst)
}

// scores: out[8c+l] = Σ_i q[i]·k[i·bs + 8c + l] for c < chunks, two chunks per pass.
func (g *gen) scores(e elem) {
	name := "scores" + e.name + "AVX2"
	g.p("// func %s(out *float32, q *float32, k *%s, hs, bs, chunks int)", name, e.gotyp)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.p("\tMOVQ out+0(FP), DI")
	g.p("\tMOVQ q+8(FP), SI")
	g.p("\tMOVQ k+16(FP), DX")
	g.p("\tMOVQ hs+24(FP), CX")
	g.p("\tMOVQ bs+32(FP), R8")
	if e.size > 1 {
		g.p("\tSHLQ $%d, R8", map[int]int{2: 1, 4: 2}[e.size])
	}
	g.p("\tMOVQ chunks+40(FP), R9")
	g.p("%s_pair:", name)
	g.p("\tCMPQ R9, $2")
	g.p("\tJLT %s_single", name)
	g.p("\tVXORPS Y0, Y0, Y0")
	g.p("\tVXORPS Y1, Y1, Y1")
	g.p("\tMOVQ SI, R10")
	g.p("\tMOVQ DX, R11")
	g.p("\tMOVQ CX, R12")
	g.p("%s_pairloop:", name)
	g.p("\tVBROADCASTSS (R10), Y2")
	g.mul(e, 0, "R11", "Y2", "Y5", "Y3")
	g.p("\tVADDPS Y3, Y0, Y0")
	g.mul(e, 8*e.size, "R11", "Y2", "Y6", "Y4")
	g.p("\tVADDPS Y4, Y1, Y1")
	g.p("\tADDQ $4, R10")
	g.p("\tADDQ R8, R11")
	g.p("\tDECQ R12")
	g.p("\tJNZ %s_pairloop", name)
	g.p("\tVMOVUPS Y0, (DI)")
	g.p("\tVMOVUPS Y1, 32(DI)")
	g.p("\tADDQ $64, DI")
	g.p("\tADDQ $%d, DX", 16*e.size)
	g.p("\tSUBQ $2, R9")
	g.p("\tJMP %s_pair", name)
	g.p("%s_single:", name)
	g.p("\tCMPQ R9, $1")
	g.p("\tJLT %s_done", name)
	g.p("\tVXORPS Y0, Y0, Y0")
	g.p("\tMOVQ SI, R10")
	g.p("\tMOVQ DX, R11")
	g.p("\tMOVQ CX, R12")
	g.p("%s_singleloop:", name)
	g.p("\tVBROADCASTSS (R10), Y2")
	g.mul(e, 0, "R11", "Y2", "Y5", "Y3")
	g.p("\tVADDPS Y3, Y0, Y0")
	g.p("\tADDQ $4, R10")
	g.p("\tADDQ R8, R11")
	g.p("\tDECQ R12")
	g.p("\tJNZ %s_singleloop", name)
	g.p("\tVMOVUPS Y0, (DI)")
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// accum: out[8c+l] += Σ_j w[j]·v[j·hs + 8c + l] for c < chunks and j < n, four chunks per
// pass (n ≥ 1).
func (g *gen) accum(e elem) {
	name := "accum" + e.name + "AVX2"
	g.p("// func %s(out *float32, w *float32, v *%s, chunks, n, hs int)", name, e.gotyp)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.p("\tMOVQ out+0(FP), DI")
	g.p("\tMOVQ w+8(FP), SI")
	g.p("\tMOVQ v+16(FP), DX")
	g.p("\tMOVQ chunks+24(FP), R9")
	g.p("\tMOVQ n+32(FP), CX")
	g.p("\tMOVQ hs+40(FP), R8")
	if e.size > 1 {
		g.p("\tSHLQ $%d, R8", map[int]int{2: 1, 4: 2}[e.size])
	}
	for _, width := range []int{4, 1} {
		label := fmt.Sprintf("%s_%d", name, width)
		g.p("%s:", label)
		g.p("\tCMPQ R9, $%d", width)
		if width == 4 {
			g.p("\tJLT %s_1", name)
		} else {
			g.p("\tJLT %s_done", name)
		}
		for c := range width {
			g.p("\tVMOVUPS %d(DI), Y%d", 32*c, c)
		}
		g.p("\tMOVQ SI, R10")
		g.p("\tMOVQ DX, R11")
		g.p("\tMOVQ CX, R12")
		g.p("%s_loop:", label)
		g.p("\tVBROADCASTSS (R10), Y4")
		for c := range width {
			g.mul(e, 8*e.size*c, "R11", "Y4", fmt.Sprintf("Y%d", 9+c), fmt.Sprintf("Y%d", 5+c))
			g.p("\tVADDPS Y%d, Y%d, Y%d", 5+c, c, c)
		}
		g.p("\tADDQ $4, R10")
		g.p("\tADDQ R8, R11")
		g.p("\tDECQ R12")
		g.p("\tJNZ %s_loop", label)
		for c := range width {
			g.p("\tVMOVUPS Y%d, %d(DI)", c, 32*c)
		}
		g.p("\tADDQ $%d, DI", 32*width)
		g.p("\tADDQ $%d, DX", 8*e.size*width)
		g.p("\tSUBQ $%d, R9", width)
		g.p("\tJMP %s", label)
	}
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// nibbles emits lo and hi = the signed low and high nibbles of eight bytes at off(ptr),
// as float32 lanes.
func (g *gen) nibbles(off int, ptr, lo, hi string) {
	g.p("\tVPMOVSXBD %d(%s), %s", off, ptr, hi)
	g.p("\tVPSLLD $28, %s, %s", hi, lo)
	g.p("\tVPSRAD $28, %s, %s", lo, lo)
	g.p("\tVPSRAD $4, %s, %s", hi, hi)
	g.p("\tVCVTDQ2PS %s, %s", lo, lo)
	g.p("\tVCVTDQ2PS %s, %s", hi, hi)
}

// scoresI4: out[8c+l] = Σ_m q[2m]·lo(k[m·bs+8c+l]) + q[2m+1]·hi(...), in order of i = 2m,
// 2m+1, for c < chunks; hs2 = headSize/2 byte rows.
func (g *gen) scoresI4() {
	name := "scoresI4AVX2"
	g.p("// func %s(out *float32, q *float32, k *byte, hs2, bs, chunks int)", name)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.p("\tMOVQ out+0(FP), DI")
	g.p("\tMOVQ q+8(FP), SI")
	g.p("\tMOVQ k+16(FP), DX")
	g.p("\tMOVQ hs2+24(FP), CX")
	g.p("\tMOVQ bs+32(FP), R8")
	g.p("\tMOVQ chunks+40(FP), R9")
	for _, width := range []int{2, 1} {
		label := fmt.Sprintf("%s_%d", name, width)
		g.p("%s:", label)
		g.p("\tCMPQ R9, $%d", width)
		if width == 2 {
			g.p("\tJLT %s_1", name)
		} else {
			g.p("\tJLT %s_done", name)
		}
		for c := range width {
			g.p("\tVXORPS Y%d, Y%d, Y%d", c, c, c)
		}
		g.p("\tMOVQ SI, R10")
		g.p("\tMOVQ DX, R11")
		g.p("\tMOVQ CX, R12")
		g.p("%s_loop:", label)
		g.p("\tVBROADCASTSS (R10), Y2")
		g.p("\tVBROADCASTSS 4(R10), Y3")
		for c := range width {
			lo, hi := fmt.Sprintf("Y%d", 4+2*c), fmt.Sprintf("Y%d", 5+2*c)
			g.nibbles(8*c, "R11", lo, hi)
			g.p("\tVMULPS %s, Y2, %s", lo, lo)
			g.p("\tVADDPS %s, Y%d, Y%d", lo, c, c)
			g.p("\tVMULPS %s, Y3, %s", hi, hi)
			g.p("\tVADDPS %s, Y%d, Y%d", hi, c, c)
		}
		g.p("\tADDQ $8, R10")
		g.p("\tADDQ R8, R11")
		g.p("\tDECQ R12")
		g.p("\tJNZ %s_loop", label)
		for c := range width {
			g.p("\tVMOVUPS Y%d, %d(DI)", c, 32*c)
		}
		g.p("\tADDQ $%d, DI", 32*width)
		g.p("\tADDQ $%d, DX", 8*width)
		g.p("\tSUBQ $%d, R9", width)
		g.p("\tJMP %s", label)
	}
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// accumI4: for byte chunks c < chunks, out[8c+l] += Σ_j w[j]·lo(v[j·stride+8c+l]) and
// out[hs2+8c+l] += Σ_j w[j]·hi(...), for j < n (n ≥ 1): a V row's byte m holds elements
// m and m+hs2.
func (g *gen) accumI4() {
	name := "accumI4AVX2"
	g.p("// func %s(out *float32, w *float32, v *byte, chunks, n, stride int)", name)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	g.p("\tMOVQ out+0(FP), DI")
	g.p("\tMOVQ w+8(FP), SI")
	g.p("\tMOVQ v+16(FP), DX")
	g.p("\tMOVQ chunks+24(FP), R9")
	g.p("\tMOVQ n+32(FP), CX")
	g.p("\tMOVQ stride+40(FP), R8")
	g.p("\tMOVQ R8, BX")
	g.p("\tSHLQ $2, BX") // byte offset of the hi half of out: hs2 floats
	for _, width := range []int{2, 1} {
		label := fmt.Sprintf("%s_%d", name, width)
		g.p("%s:", label)
		g.p("\tCMPQ R9, $%d", width)
		if width == 2 {
			g.p("\tJLT %s_1", name)
		} else {
			g.p("\tJLT %s_done", name)
		}
		for c := range width {
			g.p("\tVMOVUPS %d(DI), Y%d", 32*c, 2*c)
			g.p("\tVMOVUPS %d(DI)(BX*1), Y%d", 32*c, 2*c+1)
		}
		g.p("\tMOVQ SI, R10")
		g.p("\tMOVQ DX, R11")
		g.p("\tMOVQ CX, R12")
		g.p("%s_loop:", label)
		g.p("\tVBROADCASTSS (R10), Y4")
		for c := range width {
			lo, hi := fmt.Sprintf("Y%d", 5+2*c), fmt.Sprintf("Y%d", 6+2*c)
			g.nibbles(8*c, "R11", lo, hi)
			g.p("\tVMULPS %s, Y4, %s", lo, lo)
			g.p("\tVADDPS %s, Y%d, Y%d", lo, 2*c, 2*c)
			g.p("\tVMULPS %s, Y4, %s", hi, hi)
			g.p("\tVADDPS %s, Y%d, Y%d", hi, 2*c+1, 2*c+1)
		}
		g.p("\tADDQ $4, R10")
		g.p("\tADDQ R8, R11")
		g.p("\tDECQ R12")
		g.p("\tJNZ %s_loop", label)
		for c := range width {
			g.p("\tVMOVUPS Y%d, %d(DI)", 2*c, 32*c)
			g.p("\tVMOVUPS Y%d, %d(DI)(BX*1)", 2*c+1, 32*c)
		}
		g.p("\tADDQ $%d, DI", 32*width)
		g.p("\tADDQ $%d, DX", 8*width)
		g.p("\tSUBQ $%d, R9", width)
		g.p("\tJMP %s", label)
	}
	g.p("%s_done:", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

func main() {
	var g gen
	g.p("// Code generated by gen_kernels.go; DO NOT EDIT.")
	g.p("")
	g.p("#include \"textflag.h\"")
	g.p("")
	for _, e := range elems {
		g.scores(e)
		g.accum(e)
	}
	g.scoresI4()
	g.accumI4()
	if err := os.WriteFile("kernels_amd64.s", g.b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
