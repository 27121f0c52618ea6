// Package tensor holds the math kernels of the transformer: the matrix product of a batch
// of activations with a weight matrix (fp32 or Q8), dot and axpy, RMSNorm, softmax and
// SiLU, and a Pool of persistent worker goroutines that splits the work.
//
// Invariants:
//   - Every output element is one dot product accumulated in fp32 (no fp64, no Kahan);
//     only the order of the additions differs from MatMulRef (SIMD lanes are summed at
//     the end). Q8 weights multiply fp32 activations; each group's sum is scaled and
//     added to the row's sum. Activations are never quantized.
//   - A token's output is the same bits whatever the batch size t and the thread count:
//     every tile shape keeps one accumulator per output and reduces its lanes in the same
//     order, and threads split rows at multiples of 4. (Different kernel sets — AVX-512,
//     AVX2, Go — differ from each other in the last bits.)
//   - RMSNorm, Softmax and SiLU follow llama2.c's run.c operation for operation, with
//     sequential fp32 sums, so they match it bit for bit given the same exp.
//   - MatMul, For, Dot and Axpy allocate nothing. A Pool starts its workers once; a call
//     hands each worker one job over its channel and waits for all of them.
//   - A Pool serialises concurrent callers; a function run by For must not call back
//     into its own Pool.
//
// Kernels: on amd64 MatMul, Dot and Axpy run generated assembly (gen_asm.go writes
// matmul_amd64.s and tiles_amd64.go), chosen at start with golang.org/x/sys/cpu: AVX-512
// when present, else AVX2+FMA, else portable Go (also with -tags purego or on other
// architectures). A tile keeps an R x C block of vector accumulators: up to 4 weight rows
// x 6 tokens with AVX-512 (24 of 32 ZMM), 4 x 2 with AVX2. Each block of 4 weight rows is
// read from memory once per call and reused from L1 for every tile of tokens; column
// tails use masked loads; 4-row tiles are reduced with a transpose tree. Q8 tiles convert
// int8 with VPMOVSXBD and VCVTDQ2PS and prefetch the next row block. The tests compare
// every set with MatMulRef; docs/benchmarks-kernels.md records the speed against gonum's
// Sgemv/Sgemm.
//
// Callers must not let out overlap x or w.
package tensor
