package ckpt

import (
	"io"
	"testing"
)

// BenchmarkWriteSynthetic measures streaming synthetic weights (bytes/s of checkpoint).
func BenchmarkWriteSynthetic(b *testing.B) {
	cfg := Config{Dim: 288, HiddenDim: 768, Layers: 6, Heads: 6, KVHeads: 6, Vocab: 32000, SeqLen: 256}
	for _, v := range []int{0, 2} {
		c := cfg
		c.Version = v
		c = c.WithDefaults()
		size, _ := c.FileSize()
		b.Run(c.String()[:2], func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if err := WriteSynthetic(io.Discard, c, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
