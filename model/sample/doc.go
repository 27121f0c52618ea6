// Package sample turns a vector of logits into the next token id, exactly as llama2.c's
// run.c does: greedy argmax at temperature 0, otherwise temperature scaling, softmax and
// either plain multinomial sampling or top-p (nucleus) sampling.
//
// # Invariants
//
//   - Position-pure randomness. The random number used for the k-th sampled token of a
//     request (k = 0 for the first token after the prompt, so k = position - (promptLen-1)
//     for the token sampled from the logits at position position) is Coin(seed, k): the
//     (k+1)-th output of run.c's xorshift64* stream started from seed. It depends on
//     nothing else — not on batching, not on which node samples, not on what was sampled
//     before — so a request resumed on another node continues the same story.
//   - Bit-compatible with run.c. Given the same float32 logits, the same seed and the same
//     k, Sample returns the token run.c returns: the same float32 operations in the same
//     order (division by temperature, max-subtracted softmax, float32 cumulative sums,
//     cutoff (1-topp)/(n-1), cut where the cumulative probability first exceeds topp,
//     r = coin*cumprob).
//   - Determinism where run.c is not. run.c sorts nucleus candidates with qsort, which is not
//     guaranteed stable, so candidates with exactly equal probabilities may come in any
//     order. Sample orders them by probability descending, then index ascending: a total
//     order, so the result never depends on the selection algorithm (Sample pops the
//     nucleus from a heap rather than sorting every candidate). glibc's qsort is a merge sort in
//     most releases, which keeps equal elements in index order, so the two agree there.
//   - Seed 0. run.c replaces seed 0 by the time of day; xorshift from state 0 would stay 0
//     forever. Here seed 0 means DefaultSeed, so a request without a seed still samples,
//     reproducibly. Callers that need different stories per request must pick seeds.
//   - Hot path. A Sampler holds the scratch for one vocabulary size, allocated once by New;
//     Sample allocates nothing. A Sampler is not safe for concurrent use; Coin and Argmax
//     are pure and safe anywhere.
//
// Sample overwrites the logits it is given (with the scaled probabilities), like run.c.
package sample
