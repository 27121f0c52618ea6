package ckpt

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
)

// chunkValues is how many values the writer generates, converts and writes at a time.
const chunkValues = 1 << 16

// source fills dst with values off .. off+len(dst)-1 of tensor s; the writer asks for each
// tensor's chunks in order, starting at off 0.
type source func(s segment, off int, dst []float32)

// Write writes a checkpoint of shape and format cfg (Version 0, 1 or 2) to w, asking fill
// for each tensor's values, once per tensor, in file order. Tensor names are "embedding",
// "layers.L.attn_norm", "layers.L.wq", "layers.L.wk", "layers.L.wv", "layers.L.wo",
// "layers.L.ffn_norm", "layers.L.w1", "layers.L.w2", "layers.L.w3", "final_norm" and,
// unless cfg.SharedClassifier, "classifier"; dst has the tensor's (rows, cols) values,
// zeroed. The legacy RoPE tables are computed here, as export.py writes them. For
// Version 2, a zero GroupSize means the largest of 64, 32, ... dividing Dim and HiddenDim;
// the matrices are quantized like export.py. Write holds one whole tensor in memory; use
// WriteSynthetic for checkpoints too large for that.
func Write(w io.Writer, cfg Config, fill func(tensor string, dst []float32)) error {
	var whole []float32 // (rows, cols) of the tensor being written
	return write(w, cfg, func(s segment, off int, dst []float32) {
		if off == 0 {
			n := int(s.elems())
			if cap(whole) < n {
				whole = make([]float32, n)
			}
			whole = whole[:n]
			clear(whole)
			fill(s.name(), whole)
		}
		copy(dst, whole[off:])
	})
}

// WriteLegacy writes cfg in the legacy (version 0) layout whatever cfg.Version says; see
// Write.
func WriteLegacy(w io.Writer, cfg Config, fill func(tensor string, dst []float32)) error {
	cfg.Version, cfg.GroupSize = 0, 0
	return Write(w, cfg, fill)
}

// WithDefaults fills the zero GroupSize of a version 2 config: the largest of 64, 32, ...
// dividing both Dim and HiddenDim (export.py starts at 64 and halves while it does not
// divide Dim).
func (c Config) WithDefaults() Config {
	if c.Version == 2 && c.GroupSize == 0 {
		c.GroupSize = 64
		for c.GroupSize > 1 && (c.Dim%c.GroupSize != 0 || c.HiddenDim%c.GroupSize != 0) {
			c.GroupSize /= 2
		}
	}
	return c
}

// write streams cfg's checkpoint to w, chunk by chunk, from src.
func write(w io.Writer, cfg Config, src source) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	put := func(b []byte) error {
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("write checkpoint: %w", err)
		}
		return nil
	}
	if err := put(header(cfg)); err != nil {
		return err
	}
	chunk := chunkValues
	if g := cfg.GroupSize; g > 0 {
		chunk = max(1, chunkValues/g) * g // whole groups
	}
	vals := make([]float32, chunk) // (chunk)
	raw := make([]byte, 4*chunk)   // (chunk) little-endian float32, or int8
	q := make([]int8, chunk)       // (chunk)
	var scales []float32           // (values/groupSize) of the q8 tensor being written
	for s := range cfg.segments() {
		n := int(s.elems())
		if s.kind == q8 {
			scales = slices.Grow(scales[:0], n/cfg.GroupSize)[:n/cfg.GroupSize]
		}
		for off := 0; off < n; off += chunk {
			v := vals[:min(chunk, n-off)]
			if s.kind == unused {
				ropeTable(cfg, s.role == roleRopeSin, off, v)
			} else {
				src(s, off, v)
			}
			out := raw[:len(v)]
			if s.kind == q8 {
				quantize(v, cfg.GroupSize, q[:len(v)], scales[off/cfg.GroupSize:])
				for i, x := range q[:len(v)] {
					out[i] = byte(x)
				}
			} else {
				out = putF32s(raw, v)
			}
			if err := put(out); err != nil {
				return err
			}
		}
		for i := 0; s.kind == q8 && i < len(scales); i += chunk {
			if err := put(putF32s(raw, scales[i:min(len(scales), i+chunk)])); err != nil {
				return err
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// header encodes cfg's header.
func header(cfg Config) []byte {
	le := binary.LittleEndian
	vocab := cfg.Vocab
	if cfg.Version == 0 && !cfg.SharedClassifier {
		vocab = -vocab
	}
	params := []int{cfg.Dim, cfg.HiddenDim, cfg.Layers, cfg.Heads, cfg.KVHeads, vocab, cfg.SeqLen}
	var b []byte
	if cfg.Version != 0 {
		b = le.AppendUint32(b, magic)
		b = le.AppendUint32(b, uint32(int32(cfg.Version)))
	}
	for _, p := range params {
		b = le.AppendUint32(b, uint32(int32(p)))
	}
	if cfg.Version == 0 {
		return b
	}
	shared := byte(0)
	if cfg.SharedClassifier {
		shared = 1
	}
	b = append(b, shared)
	if cfg.Version == 2 {
		b = le.AppendUint32(b, uint32(int32(cfg.GroupSize)))
	}
	return append(b, make([]byte, ak42HeaderSize-len(b))...)
}

// putF32s encodes v little-endian into the start of raw and returns those bytes.
func putF32s(raw []byte, v []float32) []byte {
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return raw[:4*len(v)]
}

// ropeTable fills dst with values off.. of the legacy RoPE table (seqLen, headSize/2):
// cos (or sin) of pos / 10000^(2i/headSize), in float32 as model.py's
// precompute_freqs_cis computes it.
func ropeTable(cfg Config, sin bool, off int, dst []float32) {
	half := cfg.HeadSize() / 2
	for k := range dst {
		pos, i := (off+k)/half, (off+k)%half
		freq := 1 / float32(math.Pow(10000, float64(float32(2*i)/float32(cfg.HeadSize()))))
		angle := float64(float32(pos) * freq)
		if sin {
			dst[k] = float32(math.Sin(angle))
		} else {
			dst[k] = float32(math.Cos(angle))
		}
	}
}
