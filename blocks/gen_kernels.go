//go:build ignore

// gen_kernels writes kernels_amd64.s: the AVX2 attention kernels for FP32, FP16 (F16C),
// Int8 and Int4 blocks. Run `go generate` in this directory; never edit the output by hand.
//
// Every kernel keeps the order of run.c's sums: Scores puts eight positions in the lanes of
// a vector and adds q[i]·K[i] for i = 0, 1, 2, ... (a transposed K tile makes K[i] of eight
// positions one load); AccumV puts eight elements of out in the lanes and adds w[j]·V[j]
// for j = 0, 1, 2, .... Products and sums are separate VMULPS and VADDPS, never an FMA, so
// each lane rounds exactly as the scalar Go code does.
//
// All kernels share one shape. Registers: DI out, SI the broadcast operand (q or w), DX the
// stored elements (K or V), CX the iteration count, R8 the stride between iterations in
// bytes, R9 the number of 8-lane chunks left, BX the offset of out's upper half (Int4
// AccumV). Chunks are done `width` at a time, widest first; for each group the iterations
// run in order, each broadcasting its operand(s) and updating every chunk's accumulators.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"strings"
)

type gen struct{ b bytes.Buffer }

func (g *gen) p(format string, args ...any) { fmt.Fprintf(&g.b, "\t"+format+"\n", args...) }

// kernel describes one assembly function.
type kernel struct {
	name    string
	args    [6]string // Go parameter names, each name:register ("-" for none)
	goSig   string    // Go declaration, for the comment
	shift   int       // log2 of the element size: R8 holds a count of elements
	widths  []int     // chunks per group, widest first
	fromOut bool      // accumulators start from out (AccumV), not zero (Scores)
	upper   bool      // each chunk also has an accumulator for out[hs2+...], at BX (Int4 AccumV)
	bcast   int       // operands broadcast per iteration (2 for Int4 Scores: q[2m], q[2m+1])
	inBytes int       // bytes of stored elements per chunk
	// step emits one iteration for chunk c: acc are its accumulators, b the broadcast
	// registers, t two free temporaries.
	step func(g *gen, c int, acc, b, t []string)
}

func y(n int) string { return fmt.Sprintf("Y%d", n) }

// load emits dst = eight stored elements at off(R11), as float32.
func load(g *gen, typ string, off int, dst string) {
	switch typ {
	case "F16":
		g.p("VCVTPH2PS %d(R11), %s", off, dst)
	case "I8":
		g.p("VPMOVSXBD %d(R11), %s", off, dst)
		g.p("VCVTDQ2PS %s, %s", dst, dst)
	}
}

// mulAdd emits acc += b · (eight elements at off(R11)) through temporary t.
func mulAdd(g *gen, typ string, off int, acc, b, t string) {
	if typ == "F32" {
		g.p("VMULPS %d(R11), %s, %s", off, b, t)
	} else {
		load(g, typ, off, t)
		g.p("VMULPS %s, %s, %s", t, b, t)
	}
	g.p("VADDPS %s, %s, %s", t, acc, acc)
}

// nibbles emits lo and hi = the signed low and high nibbles of eight bytes at off(R11), as
// float32 lanes.
func nibbles(g *gen, off int, lo, hi string) {
	g.p("VPMOVSXBD %d(R11), %s", off, hi)
	g.p("VPSLLD $28, %s, %s", hi, lo)
	g.p("VPSRAD $28, %s, %s", lo, lo)
	g.p("VPSRAD $4, %s, %s", hi, hi)
	g.p("VCVTDQ2PS %s, %s", lo, lo)
	g.p("VCVTDQ2PS %s, %s", hi, hi)
}

func (g *gen) kernel(k kernel) {
	per := 1
	if k.upper {
		per = 2
	}
	maxW := k.widths[0]
	bReg := per * maxW     // first broadcast register
	tReg := bReg + k.bcast // first temporary
	if tReg+2*maxW > 16 {
		log.Fatalf("%s: needs %d vector registers", k.name, tReg+2*maxW)
	}
	g.b.WriteString("// " + k.goSig + "\n")
	fmt.Fprintf(&g.b, "TEXT ·%s(SB), NOSPLIT, $0-48\n", k.name)
	for i, a := range k.args {
		name, reg, _ := strings.Cut(a, ":")
		g.p("MOVQ %s+%d(FP), %s", name, 8*i, reg)
	}
	if k.shift > 0 {
		g.p("SHLQ $%d, R8", k.shift)
	}
	if k.upper {
		g.p("MOVQ R8, BX")
		g.p("SHLQ $2, BX") // hs2 floats
	}
	var b []string
	for i := range k.bcast {
		b = append(b, y(bReg+i))
	}
	for wi, w := range k.widths {
		label := fmt.Sprintf("%s_%d", k.name, w)
		next := k.name + "_done"
		if wi+1 < len(k.widths) {
			next = fmt.Sprintf("%s_%d", k.name, k.widths[wi+1])
		}
		fmt.Fprintf(&g.b, "%s:\n", label)
		g.p("CMPQ R9, $%d", w)
		g.p("JLT %s", next)
		addr := func(c, a int) string { // where accumulator a of chunk c lives in out
			if a == 1 {
				return fmt.Sprintf("%d(DI)(BX*1)", 32*c)
			}
			return fmt.Sprintf("%d(DI)", 32*c)
		}
		for c := range w {
			for a := range per {
				if k.fromOut {
					g.p("VMOVUPS %s, %s", addr(c, a), y(per*c+a))
				} else {
					g.p("VXORPS %s, %s, %s", y(per*c+a), y(per*c+a), y(per*c+a))
				}
			}
		}
		g.p("MOVQ SI, R10")
		g.p("MOVQ DX, R11")
		g.p("MOVQ CX, R12")
		fmt.Fprintf(&g.b, "%s_loop:\n", label)
		for i, r := range b {
			g.p("VBROADCASTSS %d(R10), %s", 4*i, r)
		}
		for c := range w {
			var acc []string
			for a := range per {
				acc = append(acc, y(per*c+a))
			}
			k.step(g, c, acc, b, []string{y(tReg + 2*c), y(tReg + 2*c + 1)})
		}
		g.p("ADDQ $%d, R10", 4*k.bcast)
		g.p("ADDQ R8, R11")
		g.p("DECQ R12")
		g.p("JNZ %s_loop", label)
		for c := range w {
			for a := range per {
				g.p("VMOVUPS %s, %s", y(per*c+a), addr(c, a))
			}
		}
		g.p("ADDQ $%d, DI", 32*w)
		g.p("ADDQ $%d, DX", k.inBytes*w)
		g.p("SUBQ $%d, R9", w)
		g.p("JMP %s", label)
	}
	fmt.Fprintf(&g.b, "%s_done:\n", k.name)
	g.p("VZEROUPPER")
	g.p("RET")
	g.b.WriteString("\n")
}

func main() {
	var g gen
	g.b.WriteString("// Code generated by gen_kernels.go; DO NOT EDIT.\n\n#include \"textflag.h\"\n\n")
	scoresArgs := [6]string{"out:DI", "q:SI", "k:DX", "hs:CX", "bs:R8", "chunks:R9"}
	accumArgs := [6]string{"out:DI", "w:SI", "v:DX", "chunks:R9", "n:CX", "hs:R8"}
	for _, e := range []struct {
		name, gotyp string
		shift       int
	}{{"F32", "float32", 2}, {"F16", "uint16", 1}, {"I8", "int8", 0}} {
		step := func(g *gen, c int, acc, b, t []string) { mulAdd(g, e.name, 8<<e.shift*c, acc[0], b[0], t[0]) }
		// Scores: out[8c+l] = Σ_i q[i]·k[i·bs + 8c + l], i in order.
		g.kernel(kernel{
			name: "scores" + e.name + "AVX2", args: scoresArgs, shift: e.shift,
			goSig:  fmt.Sprintf("func scores%sAVX2(out, q *float32, k *%s, hs, bs, chunks int)", e.name, e.gotyp),
			widths: []int{2, 1}, bcast: 1, inBytes: 8 << e.shift, step: step,
		})
		// AccumV: out[8c+l] += Σ_j w[j]·v[j·hs + 8c + l], j in order (n ≥ 1).
		g.kernel(kernel{
			name: "accum" + e.name + "AVX2", args: accumArgs, shift: e.shift,
			goSig:  fmt.Sprintf("func accum%sAVX2(out, w *float32, v *%s, chunks, n, hs int)", e.name, e.gotyp),
			widths: []int{4, 1}, fromOut: true, bcast: 1, inBytes: 8 << e.shift, step: step,
		})
	}
	// Int4 Scores: byte m of a position holds elements 2m (low nibble) and 2m+1, added in
	// that order; hs2 = headSize/2 byte rows.
	g.kernel(kernel{
		name: "scoresI4AVX2", args: [6]string{"out:DI", "q:SI", "k:DX", "hs2:CX", "bs:R8", "chunks:R9"},
		goSig:  "func scoresI4AVX2(out, q *float32, k *byte, hs2, bs, chunks int)",
		widths: []int{2, 1}, bcast: 2, inBytes: 8,
		step: func(g *gen, c int, acc, b, t []string) {
			nibbles(g, 8*c, t[0], t[1])
			for i := range 2 {
				g.p("VMULPS %s, %s, %s", t[i], b[i], t[i])
				g.p("VADDPS %s, %s, %s", t[i], acc[0], acc[0])
			}
		},
	})
	// Int4 AccumV: byte m of a V row holds elements m and m+hs2 (stride = hs2 bytes).
	g.kernel(kernel{
		name: "accumI4AVX2", args: [6]string{"out:DI", "w:SI", "v:DX", "chunks:R9", "n:CX", "stride:R8"},
		goSig:  "func accumI4AVX2(out, w *float32, v *byte, chunks, n, stride int)",
		widths: []int{2, 1}, fromOut: true, upper: true, bcast: 1, inBytes: 8,
		step: func(g *gen, c int, acc, b, t []string) {
			nibbles(g, 8*c, t[0], t[1])
			for i := range 2 {
				g.p("VMULPS %s, %s, %s", t[i], b[0], t[i])
				g.p("VADDPS %s, %s, %s", t[i], acc[i], acc[i])
			}
		},
	})
	if err := os.WriteFile("kernels_amd64.s", g.b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
