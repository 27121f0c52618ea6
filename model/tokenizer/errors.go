package tokenizer

import "errors"

var (
	// ErrTruncated: the data ends inside the header or inside a token's entry.
	ErrTruncated = errors.New("tokenizer file truncated")
	// ErrFormat: a negative piece length, or bytes after the last token that are not whole
	// token entries.
	ErrFormat = errors.New("bad tokenizer file")
	// ErrVocab: the file holds a different number of tokens than the model's vocabulary.
	ErrVocab = errors.New("tokenizer vocabulary differs from the model's")
)
