package ckpt

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/kvmesh/kvmesh/model/tensor"
)

// Layer is one transformer block's weights.
type Layer struct {
	AttnNorm []float32     // (dim)
	Wq       tensor.Matrix // (dim, dim)
	Wk, Wv   tensor.Matrix // (kvDim, dim)
	Wo       tensor.Matrix // (dim, dim)
	FFNNorm  []float32     // (dim)
	W1, W3   tensor.Matrix // (hidden, dim)
	W2       tensor.Matrix // (dim, hidden)
}

// Checkpoint is a model's weights, viewing the bytes of its file (see the package doc for
// what is copied). It is immutable and safe for concurrent reads until Close.
type Checkpoint struct {
	Config     Config
	Embedding  []float32     // (vocab, dim), fp32 always
	Layers     []Layer       // (layers)
	FinalNorm  []float32     // (dim)
	Classifier tensor.Matrix // (vocab, dim); views the embedding when shared

	data     []byte // the whole file; an mmap to unmap on Close when mapped is set
	mapped   bool
	identity string // hex sha256, see Identity
}

// Parse views a checkpoint in data, which must stay unmodified while the Checkpoint is in
// use. For a parsed checkpoint Close only clears the fields; data stays the caller's.
func Parse(data []byte) (*Checkpoint, error) {
	if !littleEndian() {
		return nil, ErrBigEndian
	}
	cfg, err := parseHeader(data)
	if err != nil {
		return nil, err
	}
	want := cfg.fileSize()
	switch got := int64(len(data)); {
	case got < want:
		return nil, fmt.Errorf("%w: %d bytes, the header (%s) needs %d", ErrTruncated, got, cfg, want)
	case got > want:
		return nil, fmt.Errorf("%w: %d bytes, the header (%s) describes %d: %d trailing bytes",
			ErrSize, got, cfg, want, got-want)
	}
	ck := &Checkpoint{Config: cfg, Layers: make([]Layer, cfg.Layers), data: data}
	var embeddingQ8 tensor.Matrix // (vocab, dim), version 2 only
	off := cfg.headerSize()
	for s := range cfg.segments() {
		n := int(s.elems())
		m := tensor.Matrix{Rows: s.rows, Cols: s.cols}
		switch s.kind {
		case fp32:
			m.F32 = f32s(data[off : off+4*int64(n)])
		case q8:
			m.GroupSize = cfg.GroupSize
			m.Q8 = unsafe.Slice((*int8)(unsafe.Pointer(&data[off])), n)
			m.Scales = f32s(data[off+int64(n) : off+s.bytes(cfg.GroupSize)])
		}
		off += s.bytes(cfg.GroupSize)
		switch s.role {
		case roleEmbedding:
			if s.kind == q8 {
				embeddingQ8 = m
				ck.Embedding = dequantize(m)
			} else {
				ck.Embedding = m.F32
			}
		case roleAttnNorm:
			ck.Layers[s.layer].AttnNorm = m.F32
		case roleFFNNorm:
			ck.Layers[s.layer].FFNNorm = m.F32
		case roleFinalNorm:
			ck.FinalNorm = m.F32
		case roleClassifier:
			ck.Classifier = m
		case roleRopeCos, roleRopeSin:
		default:
			*ck.Layers[s.layer].matrix(s.role) = m
		}
	}
	if cfg.SharedClassifier {
		if cfg.Version == 2 {
			ck.Classifier = embeddingQ8
		} else {
			ck.Classifier = tensor.Matrix{Rows: cfg.Vocab, Cols: cfg.Dim, F32: ck.Embedding}
		}
	}
	ck.identity = identity(data, cfg.headerSize())
	return ck, nil
}

// matrix is the field of l that holds the matrix of role r.
func (l *Layer) matrix(r role) *tensor.Matrix {
	switch r {
	case roleWq:
		return &l.Wq
	case roleWk:
		return &l.Wk
	case roleWv:
		return &l.Wv
	case roleWo:
		return &l.Wo
	case roleW1:
		return &l.W1
	case roleW2:
		return &l.W2
	case roleW3:
		return &l.W3
	}
	panic(fmt.Sprintf("ckpt: %s is not a layer matrix", roleNames[r]))
}

// parseHeader reads and validates the header at the start of data.
func parseHeader(data []byte) (Config, error) {
	le := binary.LittleEndian
	var cfg Config
	if len(data) < 4 {
		return cfg, fmt.Errorf("%w: %d bytes, shorter than any header", ErrTruncated, len(data))
	}
	params := data
	if le.Uint32(data) == magic {
		if len(data) < ak42HeaderSize {
			return cfg, fmt.Errorf("%w: %d bytes, shorter than the %d-byte ak42 header", ErrTruncated, len(data), ak42HeaderSize)
		}
		cfg.Version = int(int32(le.Uint32(data[4:])))
		if cfg.Version != 1 && cfg.Version != 2 {
			return cfg, fmt.Errorf("%w: ak42 version %d, want 1 or 2", ErrFormat, cfg.Version)
		}
		params = data[8:]
		switch shared := data[36]; shared {
		case 0, 1:
			cfg.SharedClassifier = shared == 1
		default:
			return cfg, fmt.Errorf("%w: shared classifier flag is %d, want 0 or 1", ErrFormat, shared)
		}
		if cfg.Version == 2 {
			cfg.GroupSize = int(int32(le.Uint32(data[37:])))
		}
	} else if len(data) < legacyHeaderSize {
		return cfg, fmt.Errorf("%w: %d bytes, shorter than the %d-byte legacy header", ErrTruncated, len(data), legacyHeaderSize)
	}
	p := func(i int) int { return int(int32(le.Uint32(params[4*i:]))) }
	cfg.Dim, cfg.HiddenDim, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.Vocab, cfg.SeqLen = p(0), p(1), p(2), p(3), p(4), p(5), p(6)
	if cfg.Version == 0 {
		// The legacy format signs the vocabulary size: positive means shared.
		cfg.SharedClassifier = cfg.Vocab > 0
		if cfg.Vocab < 0 {
			cfg.Vocab = -cfg.Vocab
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// String shows the header as llama2.c's parameters.
func (c Config) String() string {
	s := fmt.Sprintf("v%d dim %d hidden %d layers %d heads %d kv %d vocab %d seq %d shared %t",
		c.Version, c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KVHeads, c.Vocab, c.SeqLen, c.SharedClassifier)
	if c.Version == 2 {
		s += fmt.Sprintf(" group %d", c.GroupSize)
	}
	return s
}

// f32s views b as little-endian float32 values, copying only when b is not 4-byte aligned.
func f32s(b []byte) []float32 {
	n := len(b) / 4
	p := unsafe.Pointer(unsafe.SliceData(b))
	if uintptr(p)%4 == 0 {
		return unsafe.Slice((*float32)(p), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// littleEndian reports whether the machine stores the low byte of a word first.
func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// Close releases the file mapping. The Checkpoint's fields are cleared; no view taken from
// it may be used afterwards. Close is idempotent.
func (c *Checkpoint) Close() error {
	data, mapped := c.data, c.mapped
	identity := c.identity
	*c = Checkpoint{Config: c.Config, identity: identity}
	if mapped {
		return unmap(data)
	}
	return nil
}
