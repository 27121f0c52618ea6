package model

import (
	"fmt"
	"math"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model/ckpt"
)

// Model is a checkpoint ready to run: its weights and the RoPE tables. It is immutable and
// safe for concurrent use by any number of Runners.
type Model struct {
	Config ckpt.Config
	ck     *ckpt.Checkpoint
	cos    []float32 // (seqLen, headSize/2): cos(pos · freq_i)
	sin    []float32 // (seqLen, headSize/2): sin(pos · freq_i)
}

// New prepares a loaded checkpoint for running. The Model does not own the checkpoint: the
// caller closes it after the last use of the Model.
func New(ck *ckpt.Checkpoint) (*Model, error) {
	cfg := ck.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m := &Model{Config: cfg, ck: ck}
	m.cos, m.sin = ropeTables(cfg.SeqLen, cfg.HeadSize())
	return m, nil
}

// ropeTables computes the rotation of each pair (2i, 2i+1) of a head at each position as
// run.c does: freq = 1 / 10000^(2i/headSize) and angle = pos·freq, in float32, with the
// powf, cosf and sinf of the C library replaced by the correctly rounded float64 results.
func ropeTables(seqLen, headSize int) (cos, sin []float32) {
	half := headSize / 2
	cos = make([]float32, seqLen*half)
	sin = make([]float32, seqLen*half)
	for i := 0; i < half; i++ {
		exp := float32(2*i) / float32(headSize)
		freq := 1 / float32(math.Pow(10000, float64(exp)))
		for pos := 0; pos < seqLen; pos++ {
			val := float32(pos) * freq
			cos[pos*half+i] = float32(math.Cos(float64(val)))
			sin[pos*half+i] = float32(math.Sin(float64(val)))
		}
	}
	return cos, sin
}

// KVShape is the shape of the KV blocks this model's layers need, for a given block size.
func (m *Model) KVShape(blockSize int) blocks.Shape {
	return blocks.Shape{
		Layers:    m.Config.Layers,
		KVHeads:   m.Config.KVHeads,
		HeadSize:  m.Config.HeadSize(),
		BlockSize: blockSize,
	}
}

// Identity names the weights this model runs (the checkpoint's identity).
func (m *Model) Identity() string { return m.ck.Identity() }
