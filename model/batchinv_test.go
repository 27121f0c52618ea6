package model

import (
	"testing"

	"github.com/kvmesh/kvmesh/blocks"
)

// TestLogitsIndependentOfBatch checks that a sequence's logits are bit-identical whether
// it runs alone or in a batch with other sequences, in prefill and in decode.
func TestLogitsIndependentOfBatch(t *testing.T) {
	m := loadModel(t)
	greedy, _ := loadReference(t)
	r := NewRunner(m, RunnerConfig{})
	defer r.Close()
	cache := newCache(t, m, 16, blocks.FP32)
	vocab := m.Config.Vocab
	seqs := make([][]int, len(greedy))
	for i, c := range greedy {
		seqs[i] = append(append([]int(nil), c.PromptIDs...), c.GeneratedIDs[:20]...)
	}
	run := func(batch [][]int) [][]float32 {
		var in []Seq
		for _, s := range batch {
			tb := &blocks.Table{}
			if !cache.Append(tb, len(s)) {
				t.Fatal("out of blocks")
			}
			in = append(in, Seq{Table: tb, Tokens: s, AllLogits: true})
		}
		logits, err := r.Forward(in, cache)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]float32
		row := 0
		for _, s := range in {
			out = append(out, append([]float32(nil), logits[row*vocab:(row+len(s.Tokens))*vocab]...))
			row += len(s.Tokens)
			cache.Release(s.Table)
		}
		return out
	}
	// Single tokens: alone they take the one-token kernels, together the batched ones.
	var singles [][]int
	for _, s := range seqs {
		singles = append(singles, s[:1], s[1:2])
	}
	check(t, run, singles)
	check(t, run, seqs)
}

func check(t *testing.T, run func([][]int) [][]float32, seqs [][]int) {
	t.Helper()
	all := run(seqs)
	for i, s := range seqs {
		alone := run([][]int{s})[0]
		diff := 0
		for j := range alone {
			if alone[j] != all[i][j] {
				diff++
			}
		}
		if diff > 0 {
			t.Errorf("sequence %d: %d of %d logits differ between running alone and in a batch of %d", i, diff, len(alone), len(seqs))
		}
	}
}
