package ckpt

import "errors"

var (
	// ErrTruncated: the data ends before the header, or before the tensors the header
	// describes.
	ErrTruncated = errors.New("checkpoint truncated")
	// ErrSize: the data is longer than the header describes (trailing bytes), so the header
	// does not describe this file.
	ErrSize = errors.New("checkpoint size does not match its header")
	// ErrFormat: an unknown version, a bad flag or a bad quantization group size.
	ErrFormat = errors.New("bad checkpoint format")
	// ErrShape: the header's hyperparameters are not a model's (zero or negative sizes,
	// heads not dividing dim, kv heads not dividing heads, an odd head size, sizes too
	// large to address).
	ErrShape = errors.New("impossible checkpoint shape")
	// ErrBigEndian: the machine is big-endian; the files are little-endian and are viewed
	// in place, so they cannot be read here.
	ErrBigEndian = errors.New("checkpoints can only be read on a little-endian machine")
)
