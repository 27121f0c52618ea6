package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
)

// Special token ids of the llama2.c vocabularies.
const (
	BOS = 1 // beginning of sequence; a sampled BOS ends a story
	EOS = 2 // end of sequence

	byteFallback = 3 // id of the byte-fallback token of byte 0
	minVocab     = byteFallback + 256
)

// Tokenizer holds a vocabulary: pieces, their merge scores and the reverse lookup.
type Tokenizer struct {
	pieces    []string       // (vocab) as C sees them: up to the first NUL
	scores    []float32      // (vocab)
	ids       map[string]int // piece -> lowest id with that piece
	maxLength int            // the file's max_token_length
	space     int            // id of the dummy prefix " ", or -1
}

// Load reads the tokenizer file at path for a model with vocab tokens.
func Load(path string, vocab int) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(data, vocab)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, nil
}

// Parse reads a tokenizer file's bytes for a model with vocab tokens; the file must hold
// exactly vocab tokens. It keeps no reference to data.
func Parse(data []byte, vocab int) (*Tokenizer, error) {
	if vocab < minVocab {
		return nil, fmt.Errorf("%w: the model's vocabulary has %d tokens, byte fallback needs at least %d",
			ErrVocab, vocab, minVocab)
	}
	n, err := Count(data)
	if err != nil {
		return nil, err
	}
	if n != vocab {
		return nil, fmt.Errorf("%w: the file holds %d tokens, the model's vocabulary has %d", ErrVocab, n, vocab)
	}
	t := &Tokenizer{
		pieces:    make([]string, vocab),
		scores:    make([]float32, vocab),
		ids:       make(map[string]int, vocab),
		maxLength: int(int32(binary.LittleEndian.Uint32(data))),
	}
	off := 4
	for i := range vocab {
		score, piece, next := entry(data, off)
		if z := strings.IndexByte(piece, 0); z >= 0 {
			piece = piece[:z]
		}
		t.pieces[i], t.scores[i] = piece, score
		if _, dup := t.ids[piece]; !dup {
			t.ids[piece] = i
		}
		off = next
	}
	t.space = -1
	if id, ok := t.ids[" "]; ok {
		t.space = id
	}
	return t, nil
}

// Count reports how many whole token entries a tokenizer file holds, so that a caller can
// name the vocabulary a file was made for. The data must be a header and whole entries.
func Count(data []byte) (int, error) {
	if len(data) < 4 {
		return 0, fmt.Errorf("%w: %d bytes, shorter than the 4-byte header", ErrTruncated, len(data))
	}
	n := 0
	for off := 4; off < len(data); n++ {
		if len(data)-off < 8 {
			return n, fmt.Errorf("%w: %d bytes after token %d, shorter than an entry header", ErrTruncated, len(data)-off, n)
		}
		l := int32(binary.LittleEndian.Uint32(data[off+4:]))
		if l < 0 {
			return n, fmt.Errorf("%w: token %d has length %d", ErrFormat, n, l)
		}
		if int64(len(data)-off-8) < int64(l) {
			return n, fmt.Errorf("%w: token %d needs %d bytes, %d are left", ErrTruncated, n, l, len(data)-off-8)
		}
		off += 8 + int(l)
	}
	return n, nil
}

// entry decodes the token entry at off of data, which Count has checked.
func entry(data []byte, off int) (score float32, piece string, next int) {
	score = math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
	l := int(binary.LittleEndian.Uint32(data[off+4:]))
	return score, string(data[off+8 : off+8+l]), off + 8 + l
}

// Vocab is the number of tokens.
func (t *Tokenizer) Vocab() int { return len(t.pieces) }

// Piece is token id's piece as stored (up to its first NUL byte), without Decode's
// treatment of BOS and byte tokens. It panics for an id outside the vocabulary.
func (t *Tokenizer) Piece(id int) string { return t.pieces[id] }

// Score is token id's merge score.
func (t *Tokenizer) Score(id int) float32 { return t.scores[id] }

// MaxTokenLength is the file's max_token_length header field.
func (t *Tokenizer) MaxTokenLength() int { return t.maxLength }
