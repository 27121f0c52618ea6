package engine

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
)

// solo generates a request the naive way: one sequence, a cache of its own, one token at a
// time after the prompt. It is the model the engine is checked against.
func solo(t *testing.T, m *model.Model, req Request, seedOffset uint64) []int {
	t.Helper()
	cfg := blocks.DefaultConfig()
	cfg.Shape = m.KVShape(16)
	cfg.NumBlocks = m.Config.SeqLen/16 + 2
	cache, err := blocks.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := model.NewRunner(m, model.RunnerConfig{MaxTokens: m.Config.SeqLen})
	defer r.Close()
	smp := sample.New(m.Config.Vocab)
	p := req.Sampling
	p.Seed += seedOffset
	tb := &blocks.Table{}
	tokens := append([]int(nil), req.Prompt...)
	feed := tokens
	var out []int
	for len(out) < req.MaxTokens {
		cache.Append(tb, len(feed))
		logits, err := r.Forward([]model.Seq{{Table: tb, Tokens: feed}}, cache)
		if err != nil {
			t.Fatal(err)
		}
		tok := smp.Sample(logits, p, len(tokens)-len(req.Prompt))
		if tok == bos {
			break
		}
		out = append(out, tok)
		tokens = append(tokens, tok)
		feed = tokens[len(tokens)-1:]
		if len(tokens) > m.Config.SeqLen {
			break
		}
	}
	return out
}

// TestRandomWorkloads submits random requests to engines with random configurations and
// checks every sample against the naive generator, with every invariant checked after
// every step.
func TestRandomWorkloads(t *testing.T) {
	m := loadModel(t)
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 6 {
		cfg := Config{
			BlockSize:      []int{1, 4, 16}[rng.IntN(3)],
			MaxBatchTokens: 4 + rng.IntN(60),
			MaxRunning:     1 + rng.IntN(8),
			MaxWaiting:     64,
			Policy:         Policy(rng.IntN(3)),
			verify:         true,
		}
		cfg.PrefillChunk = 1 + rng.IntN(cfg.MaxBatchTokens)
		cfg.NumBlocks = (m.Config.SeqLen+cfg.BlockSize-1)/cfg.BlockSize + rng.IntN(64/cfg.BlockSize+1)
		if rng.IntN(2) == 0 {
			cfg.Preemption, cfg.SwapPath = Swap, filepath.Join(t.TempDir(), "swap.db")
		}
		name := fmt.Sprintf("round%d/bs%d/budget%d/chunk%d/blocks%d/preempt%d/policy%d", round,
			cfg.BlockSize, cfg.MaxBatchTokens, cfg.PrefillChunk, cfg.NumBlocks, cfg.Preemption, cfg.Policy)
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, cfg)
			shared := randomTokens(rng, 24) // a common prefix some prompts start with
			reqs := make([]Request, 12)
			for i := range reqs {
				prompt := append([]int{bos}, randomTokens(rng, rng.IntN(40))...)
				if rng.IntN(2) == 0 {
					prompt = append(append([]int{bos}, shared...), prompt[1:]...)
				}
				reqs[i] = Request{
					Prompt:    prompt,
					MaxTokens: 1 + rng.IntN(40),
					N:         1 + rng.IntN(2),
					Sampling:  sample.Params{Temperature: []float32{0, 0.9}[rng.IntN(2)], TopP: 0.9, Seed: 1 + rng.Uint64N(1000)},
					Priority:  rng.IntN(3),
				}
			}
			for i, res := range runAll(t, e, reqs) {
				for j := range reqs[i].N {
					want := solo(t, m, reqs[i], uint64(j))
					if fmt.Sprint(res.tokens[j]) != fmt.Sprint(want) {
						t.Errorf("request %d sample %d:\n got %v\nwant %v", i, j, res.tokens[j], want)
					}
				}
			}
		})
	}
}

func randomTokens(rng *rand.Rand, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 3 + rng.IntN(500)
	}
	return out
}
