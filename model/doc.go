// Package model runs a Llama-architecture decoder (RMSNorm, RoPE, grouped-query attention,
// SwiGLU) over a paged KV cache.
//
// A Model is the read-only part: the checkpoint's weights (memory-mapped, shared by every
// goroutine and every process that maps the same file) and the RoPE tables. A Runner is the
// mutable part: scratch buffers sized once for a maximum number of tokens per step and a
// kernel pool. Many Runners may share one Model; one Runner serves one goroutine.
//
// # A step
//
// Runner.Forward takes a batch: several sequences, each with one or more new tokens. All
// tokens of the batch go through every matrix multiplication together, so a prompt is
// prefilled in one matrix-matrix pass and many sequences decode in one step. For each layer:
//
//  1. RMSNorm of every token's residual row, then Q, K and V for all tokens (three MatMuls);
//  2. RoPE on every token's Q and K at the token's own position;
//  3. K and V of every token are written into its sequence's KV blocks;
//  4. attention: each token's query heads attend over positions 0..pos of its own sequence,
//     read through the block table (never copied out), including tokens of the same batch
//     written in step 3 (causal prefill);
//  5. the output projection and the SwiGLU feed-forward, each added to the residual.
//
// Then the final RMSNorm and the classifier produce logits for the tokens that asked for
// them (the last token of each sequence, or every token for teacher forcing).
//
// # Invariants
//
//   - Before Forward, each sequence's block table already holds room for its new tokens:
//     they occupy positions Table.Len-len(Tokens) .. Table.Len-1 (the caller runs
//     blocks.Cache.Append, which is where running out of blocks is decided).
//   - Forward allocates nothing once the Runner exists.
//   - Exactness: every reduction is fp32 in the same structure as llama2.c's run.c (one dot
//     product per output element; softmax as max, exp, sum, divide; V accumulated in
//     position order), so greedy fp32 output equals the reference token for token,
//     independent of batching, block size and prefill chunking.
package model
