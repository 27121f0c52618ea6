//go:build !amd64 || purego

package tensor

// kernelSet stands in for the assembly kernel sets of amd64; there are none here.
type kernelSet struct{ name string }

var kernels *kernelSet

func availableKernels() []*kernelSet { return nil }

func dot(a, b []float32) float32 { return dotGo(a, b) }

func axpy(alpha float32, x, y []float32) { axpyGo(alpha, x, y) }

func matmulTiles(out, x []float32, w Matrix, t, lo, hi int) {
	matmulRowsGo(out, x, w, t, lo, hi)
}

func matmulQ8Tiles(out, x []float32, w Matrix, t, lo, hi int) {
	matmulQ8Range(out, x, w, t, lo, hi)
}
