package serving

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
)

// bos starts every prompt, as in llama2.c.
const bos = 1

// Mix is a workload of independent requests whose prompt lengths and max_tokens are drawn
// uniformly from their ranges. Prompts are BOS then pseudo-random token ids; request i
// samples with seed Seed+i, so its tokens (and where it stops, at BOS or a stop token) are
// fixed.
type Mix struct {
	// Requests is the number of requests. Default 128.
	Requests int
	// PromptMin and PromptMax bound the prompt length in tokens, BOS included.
	// Defaults 32 and 256.
	PromptMin, PromptMax int
	// MaxTokensMin and MaxTokensMax bound max_tokens. Defaults 16 and 256.
	MaxTokensMin, MaxTokensMax int
	// Temperature and TopP are every request's sampling. Defaults 1.0 and 0.9 (run.c's).
	Temperature, TopP float32
	// StopMeanMin and StopMeanMax, when StopMeanMax > 0, give every request stop tokens
	// (Request.StopTokens, what the API's stop sequences become): request i draws L
	// uniformly from StopMeanMin..StopMeanMax and stops at any of ⌈(vocab−2)/L⌉ distinct
	// ids drawn from [2, vocab). On a model whose next-token distribution is nearly flat (a
	// synthetic checkpoint, which never emits BOS) its output then ends after about L
	// tokens, geometrically distributed, or at max_tokens: a stand-in for the end of text a
	// trained model emits. Default 0: no stop tokens.
	StopMeanMin, StopMeanMax int
	// Seed seeds the lengths and the prompts. Default 1.
	Seed uint64
}

func (m *Mix) fill() {
	if m.Requests == 0 {
		m.Requests = 128
	}
	if m.PromptMin == 0 {
		m.PromptMin = 32
	}
	if m.PromptMax == 0 {
		m.PromptMax = 256
	}
	if m.MaxTokensMin == 0 {
		m.MaxTokensMin = 16
	}
	if m.MaxTokensMax == 0 {
		m.MaxTokensMax = 256
	}
	if m.Temperature == 0 {
		m.Temperature = 1
	}
	if m.TopP == 0 {
		m.TopP = 0.9
	}
	if m.Seed == 0 {
		m.Seed = 1
	}
}

// validate fills defaults and rejects a mix that a model of context seqLen cannot run.
func (m *Mix) validate(seqLen int) error {
	m.fill()
	switch {
	case m.Requests < 1:
		return fmt.Errorf("%w: %d requests", ErrConfig, m.Requests)
	case m.PromptMin < 1 || m.PromptMax < m.PromptMin:
		return fmt.Errorf("%w: prompt lengths %d..%d", ErrConfig, m.PromptMin, m.PromptMax)
	case m.MaxTokensMin < 1 || m.MaxTokensMax < m.MaxTokensMin:
		return fmt.Errorf("%w: max_tokens %d..%d", ErrConfig, m.MaxTokensMin, m.MaxTokensMax)
	case m.StopMeanMax > 0 && (m.StopMeanMin < 1 || m.StopMeanMax < m.StopMeanMin):
		return fmt.Errorf("%w: stop means %d..%d", ErrConfig, m.StopMeanMin, m.StopMeanMax)
	case m.PromptMax+m.MaxTokensMax > seqLen:
		return fmt.Errorf("%w: prompts of up to %d tokens plus %d new tokens pass the context of %d",
			ErrConfig, m.PromptMax, m.MaxTokensMax, seqLen)
	}
	return nil
}

// maxLen is the longest sequence of the mix: the length a contiguous or static allocator
// reserves for each of its requests.
func (m Mix) maxLen() int { return m.PromptMax + m.MaxTokensMax }

// build draws the mix's requests for a vocabulary of vocab tokens.
func (m Mix) build(vocab int) []engine.Request {
	rng := rand.New(rand.NewPCG(m.Seed, 0x6d6978)) // "mix"
	reqs := make([]engine.Request, m.Requests)
	for i := range reqs {
		n := m.PromptMin + rng.IntN(m.PromptMax-m.PromptMin+1)
		reqs[i] = engine.Request{
			Prompt:    randomPrompt(rng, n, vocab),
			MaxTokens: m.MaxTokensMin + rng.IntN(m.MaxTokensMax-m.MaxTokensMin+1),
			Sampling:  sample.Params{Temperature: m.Temperature, TopP: m.TopP, Seed: m.Seed + uint64(i)},
		}
		if m.StopMeanMax > 0 {
			mean := m.StopMeanMin + rng.IntN(m.StopMeanMax-m.StopMeanMin+1)
			reqs[i].StopTokens = stopTokens(rng, (vocab-2+mean-1)/mean, vocab)
		}
	}
	return reqs
}

// stopTokens is n distinct ids drawn from [2, vocab), sorted.
func stopTokens(rng *rand.Rand, n, vocab int) []int {
	n = min(n, vocab-2)
	ids := make([]int, 0, n)
	seen := make(map[int]bool, n)
	for len(ids) < n {
		if id := 2 + rng.IntN(vocab-2); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// randomPrompt is BOS and n-1 token ids drawn from [2, vocab).
func randomPrompt(rng *rand.Rand, n, vocab int) []int {
	p := make([]int, n)
	p[0] = bos
	for i := 1; i < n; i++ {
		p[i] = 2 + rng.IntN(vocab-2)
	}
	return p
}

// appendRandom appends n token ids drawn from [2, vocab) to dst.
func appendRandom(dst []int, rng *rand.Rand, n, vocab int) []int {
	for range n {
		dst = append(dst, 2+rng.IntN(vocab-2))
	}
	return dst
}

// blocksFor is the number of blocks of bs tokens that hold n tokens.
func blocksFor(n, bs int) int { return (n + bs - 1) / bs }
