// Package ckpt reads and writes llama2.c checkpoints: the weights of a Llama-architecture
// model in one flat little-endian file.
//
// # Formats
//
// Three layouts exist (karpathy/llama2.c: export.py, run.c, runq.c):
//
//   - version 0, legacy: a 28-byte header of seven int32 (dim, hidden_dim, n_layers,
//     n_heads, n_kv_heads, vocab_size, seq_len), a negative vocab_size meaning a separate
//     classifier; then fp32 tensors: embedding, attention norms, wq, wk, wv, wo, ffn norms,
//     w1, w2, w3, final norm, two RoPE tables (seq_len, head_size/2; ignored here) and the
//     classifier if it is not shared.
//   - version 1: a 256-byte header (uint32 magic "ak42", int32 version, the seven params,
//     uint8 shared_classifier, zero padding); then fp32: the attention norms, ffn norms and
//     final norm first, then embedding, wq, wk, wv, wo, w1, w2, w3 and the classifier if it
//     is not shared. There are no RoPE tables.
//   - version 2: the version 1 header with an int32 group_size at byte 37; the norms in fp32,
//     then every matrix in Q8_0: its int8 values, then one fp32 scale per group_size
//     consecutive values (value = int8 * scale).
//
// Every matrix is row-major (out, in): out[i] = sum_j W[i*in+j] * x[j].
//
// # Invariants
//
//   - A Checkpoint's tensors are views into the file's bytes, not copies: Open maps the file
//     read-only and Parse views the caller's slice. The one exception is the version 2 token
//     embedding, which is dequantized to fp32 at load as runq.c does, and fp32 data at an
//     offset that is not 4-byte aligned, which is copied: from a page-aligned map that
//     happens only for the scales after a version 2 tensor whose size is not a multiple of
//     4 (group sizes 1 and 2).
//   - The views are read-only: writing through a view of a mapped file faults. After Close
//     no view may be used; Close clears the Checkpoint's fields so a late use through it
//     fails loudly, but copies of the slices held elsewhere point at unmapped memory.
//   - When the classifier is shared it views the embedding: the fp32 embedding for versions
//     0 and 1, the quantized embedding (as runq.c's wcls) for version 2.
//   - Parse accepts a file only if its size equals exactly the size its header implies, and
//     only shapes a model can have (Config.Validate): bad input is an error wrapping one of
//     the sentinels in errors.go, never a panic.
//   - Version 2 group sizes must divide both dim and hidden_dim, so that every row of every
//     matrix is a whole number of groups. export.py only checks dim; a file whose groups
//     straddle rows (e.g. stories42M's hidden 1376 with group 64) is rejected, as runq.c
//     would compute it wrongly.
//   - The formats are little-endian and fp32 views are direct casts of the bytes, so Parse
//     refuses to run on a big-endian machine (ErrBigEndian).
//
// # Writing
//
// Write produces any of the three layouts from a fill callback, one tensor at a time;
// WriteSynthetic streams pseudo-random weights in fixed-size chunks, so a multi-gigabyte
// checkpoint never sits in memory. Version 2 writing quantizes like export.py's
// quantize_q80: scale = max|w| / 127, q = round-half-even(w / scale).
package ckpt
