// Package tensor holds the math kernels of the transformer: the matrix product of a batch
// of activations with a weight matrix (fp32 or Q8), dot and axpy, RMSNorm, softmax and
// SiLU, and a Pool of persistent worker goroutines that splits the work.
//
// Invariants:
//   - Every output element is one dot product accumulated in fp32 (no fp64, no Kahan);
//     only the order of the additions differs from MatMulRef (SIMD lanes are summed at
//     the end). Q8 weights multiply fp32 activations; each group's sum is scaled and
//     added to the row's sum. Activations are never quantized.
//   - RMSNorm, Softmax and SiLU follow llama2.c's run.c operation for operation, with
//     sequential fp32 sums, so they match it bit for bit given the same exp.
//   - MatMul, For, Dot and Axpy allocate nothing. A Pool starts its workers once; a call
//     hands each worker one job over its channel and waits for all of them.
//   - A Pool serves one caller at a time.
//
// Kernels: on amd64 with AVX-512 (detected at start with golang.org/x/sys/cpu) MatMul uses
// generated assembly (gen_asm.go writes matmul_amd64.s) that keeps an R x C tile of ZMM
// accumulators (up to 4 weight rows x 6 tokens); each block of 4 weight rows is read from
// memory once per call and reused from L1 for every tile of tokens, and t = 1 keeps two
// accumulators per row to cover the FMA latency. Column tails use masked loads. Elsewhere,
// or built with -tags purego, portable Go kernels run; the tests compare both with
// MatMulRef. docs/benchmarks-kernels.md records the speed against gonum's Sgemv/Sgemm.
package tensor
