package tensor

import (
	"fmt"
	"math"
)

// Matrix is a row-major (Rows, Cols) weight matrix: fp32, or int8 with one fp32 scale per
// GroupSize consecutive values (llama2.c's Q8_0, groups run along rows).
type Matrix struct {
	Rows, Cols int
	F32        []float32 // (Rows, Cols) when GroupSize == 0
	Q8         []int8    // (Rows, Cols) when GroupSize > 0
	Scales     []float32 // (Rows*Cols/GroupSize) when GroupSize > 0
	GroupSize  int
}

// RowTo sets dst (Cols) to row i, dequantized if the matrix is int8.
func (m Matrix) RowTo(dst []float32, i int) {
	if i < 0 || i >= m.Rows || len(dst) < m.Cols {
		panic(fmt.Sprintf("tensor: RowTo row %d of %d into len %d, want >= %d", i, m.Rows, len(dst), m.Cols))
	}
	off := i * m.Cols
	if m.GroupSize == 0 {
		copy(dst[:m.Cols], m.F32[off:off+m.Cols])
		return
	}
	gs := m.GroupSize
	for j := 0; j < m.Cols; j++ {
		dst[j] = float32(m.Q8[off+j]) * m.Scales[(off+j)/gs]
	}
}

// QuantizeQ8 returns src (rows, cols) quantized as llama2.c's export.py does it: per
// group of gs consecutive values, scale = max|v|/127 and q = round(v/scale). gs must
// divide cols.
func QuantizeQ8(src []float32, rows, cols, gs int) Matrix {
	if gs <= 0 || cols%gs != 0 || len(src) < rows*cols {
		panic(fmt.Sprintf("tensor: QuantizeQ8 (%d, %d) group %d of %d values", rows, cols, gs, len(src)))
	}
	m := Matrix{Rows: rows, Cols: cols, GroupSize: gs,
		Q8:     make([]int8, rows*cols),
		Scales: make([]float32, rows*cols/gs)}
	for g := range m.Scales {
		grp := src[g*gs : (g+1)*gs]
		var wmax float32
		for _, v := range grp {
			wmax = max(wmax, float32(math.Abs(float64(v))))
		}
		scale := wmax / 127
		m.Scales[g] = scale
		for j, v := range grp {
			q := float32(0)
			if scale != 0 {
				q = v / scale
			}
			m.Q8[g*gs+j] = int8(math.Round(float64(q)))
		}
	}
	return m
}
