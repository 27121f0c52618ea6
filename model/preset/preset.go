// Package preset names the shapes of real Llama-architecture models, so that memory
// calculations and synthetic checkpoints can be made for them without their weights.
//
// A Shape holds only hyperparameters; nothing here reads or writes a file.
package preset

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrUnknown is returned by Lookup for a name that is not a preset.
var ErrUnknown = errors.New("unknown preset")

// Shape is the hyperparameters of a decoder-only Llama-architecture model.
type Shape struct {
	Name      string
	Dim       int // width of the residual stream
	HiddenDim int // width of the SwiGLU feed-forward layer
	Layers    int
	Heads     int // query heads
	KVHeads   int // key/value heads; Heads is a multiple of it (MHA: equal, MQA: 1)
	Vocab     int
	SeqLen    int // context length
}

// HeadSize is the width of one attention head.
func (s Shape) HeadSize() int { return s.Dim / s.Heads }

// KVDim is the width of the keys (and of the values) of one token in one layer.
func (s Shape) KVDim() int { return s.KVHeads * s.HeadSize() }

// Params counts the weights of a checkpoint of this shape with a separate classifier.
func (s Shape) Params() int64 {
	d, h, l, v, kv := int64(s.Dim), int64(s.HiddenDim), int64(s.Layers), int64(s.Vocab), int64(s.KVDim())
	perLayer := 2*d + d*d + 2*d*kv + d*d + 3*d*h
	return v*d + l*perLayer + d + v*d
}

// Validate reports whether the shape is one a model can have.
func (s Shape) Validate() error {
	switch {
	case s.Dim <= 0 || s.HiddenDim <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.Vocab <= 0 || s.SeqLen <= 0:
		return fmt.Errorf("shape %q: every dimension must be positive: %+v", s.Name, s)
	case s.Dim%s.Heads != 0:
		return fmt.Errorf("shape %q: dim %d is not a multiple of heads %d", s.Name, s.Dim, s.Heads)
	case s.Heads%s.KVHeads != 0:
		return fmt.Errorf("shape %q: heads %d is not a multiple of kv heads %d", s.Name, s.Heads, s.KVHeads)
	case s.HeadSize()%2 != 0:
		return fmt.Errorf("shape %q: head size %d is odd, RoPE rotates pairs", s.Name, s.HeadSize())
	}
	return nil
}

var presets = []Shape{
	{Name: "stories260k", Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512, SeqLen: 512},
	{Name: "llama2c-15m", Dim: 288, HiddenDim: 768, Layers: 6, Heads: 6, KVHeads: 6, Vocab: 32000, SeqLen: 256},
	{Name: "llama2c-42m", Dim: 512, HiddenDim: 1376, Layers: 8, Heads: 8, KVHeads: 8, Vocab: 32000, SeqLen: 1024},
	{Name: "llama2c-110m", Dim: 768, HiddenDim: 2048, Layers: 12, Heads: 12, KVHeads: 12, Vocab: 32000, SeqLen: 1024},
	{Name: "tinyllama-1.1b", Dim: 2048, HiddenDim: 5632, Layers: 22, Heads: 32, KVHeads: 4, Vocab: 32000, SeqLen: 2048},
	{Name: "llama-7b", Dim: 4096, HiddenDim: 11008, Layers: 32, Heads: 32, KVHeads: 32, Vocab: 32000, SeqLen: 4096},
	{Name: "llama-13b", Dim: 5120, HiddenDim: 13824, Layers: 40, Heads: 40, KVHeads: 40, Vocab: 32000, SeqLen: 4096},
	{Name: "llama-70b", Dim: 8192, HiddenDim: 28672, Layers: 80, Heads: 64, KVHeads: 8, Vocab: 32000, SeqLen: 4096},
	{Name: "llama3-8b", Dim: 4096, HiddenDim: 14336, Layers: 32, Heads: 32, KVHeads: 8, Vocab: 128256, SeqLen: 8192},
}

// All returns every preset, in a stable order (smallest first).
func All() []Shape { return append([]Shape(nil), presets...) }

// Names returns the preset names, sorted.
func Names() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	sort.Strings(names)
	return names
}

// Lookup returns the preset with the given name (case-insensitive).
func Lookup(name string) (Shape, error) {
	for _, p := range presets {
		if strings.EqualFold(p.Name, name) {
			return p, nil
		}
	}
	return Shape{}, fmt.Errorf("%w %q (known: %s)", ErrUnknown, name, strings.Join(Names(), ", "))
}
