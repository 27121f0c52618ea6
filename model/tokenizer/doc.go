// Package tokenizer is llama2.c's byte-pair-encoding tokenizer: it reads the tokenizer.bin
// format and encodes and decodes exactly as run.c does (karpathy/llama2.c).
//
// # Format
//
// An int32 max_token_length, then for each token a float32 merge score, an int32 length and
// that many bytes. The file does not say how many tokens it holds: the model does, and a
// file that holds a different number is refused, naming both (ErrVocab).
//
// # Semantics, as run.c
//
//   - Token 0 is <unk>, 1 is BOS, 2 is EOS; ids 3..258 are the byte-fallback tokens of
//     bytes 0..255, so the vocabulary must have at least 259 tokens.
//   - Pieces are C strings: a piece ends at its first NUL byte, and so does the text to
//     encode (run.c cannot see past it).
//   - Encode: BOS if asked; the piece " " (the dummy prefix) if the text is not empty and
//     the vocabulary has it; then each UTF-8 code point (a lead byte and up to three
//     continuation bytes, however malformed) as its piece if the vocabulary has it, else
//     as one byte-fallback token per byte; then, repeatedly, the adjacent pair whose
//     concatenation is a piece with the highest score (strictly greater than -1e10;
//     the leftmost pair on ties) is merged; EOS if asked. The BOS token takes part in the
//     merging, as in run.c. When two tokens have the same piece, the lower id is used
//     (run.c's bsearch would pick either; shipped vocabularies have no duplicates).
//   - Decode(prev, tok): tok's piece, less a leading space when prev is BOS; a piece that
//     sscanf reads as "<0x%02hhX>" is that raw byte. Printable mirrors safe_printf: an
//     empty piece, or a one-byte piece that is neither printable ASCII nor whitespace, is
//     not printed.
//
// # Round trip
//
// For any text without a NUL byte and without '<', valid UTF-8 or not, the concatenation of
// Decode(ids[i-1], ids[i]) over ids = Encode(text, true, false) is text again: the dummy
// prefix is the space Decode strips after BOS, and byte fallback restores invalid bytes.
// A NUL ends the text; a '<' can spell a byte piece ("<0x41>" decodes to "A") or the BOS
// piece, after which a space is stripped. Printing through Printable loses in addition
// the lone bytes of code points that fell back to bytes, as run.c's output does.
//
// Encode keeps run.c's result but not its cost: run.c rescans every pair after each merge
// (quadratic); here candidate merges wait in a heap ordered by (score, position) and stale
// ones are dropped when popped, which picks the same pair at every step. The quadratic
// version lives on in the tests as the oracle.
//
// A Tokenizer is immutable after Parse and safe for concurrent use.
package tokenizer
