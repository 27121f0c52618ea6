package serving

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
)

// TTFTTarget is the most the time to first token with prefix caching may be, as a
// fraction of the time without.
const TTFTTarget = 0.2

// TTFTConfig configures TTFT. Zero values take the documented defaults.
type TTFTConfig struct {
	// PrefixTokens is the length of the shared prefix, BOS included. Default 512.
	PrefixTokens int
	// SuffixTokens is the length of each request's distinct suffix. Default 8.
	SuffixTokens int
	// Requests is the number of requests; the first computes the prefix and is not
	// measured. Default 6.
	Requests int
	// MaxTokens is each request's max_tokens. Default 4.
	MaxTokens int
	// BlockSize is the engine's tokens per KV block. Default 16.
	BlockSize int
	// Threads is the number of kernel threads. Default: one per core.
	Threads int
	// Seed seeds the prompts. Default 1.
	Seed uint64
}

func (c *TTFTConfig) validate(m *model.Model) error {
	if c.PrefixTokens == 0 {
		c.PrefixTokens = 512
	}
	if c.SuffixTokens == 0 {
		c.SuffixTokens = 8
	}
	if c.Requests == 0 {
		c.Requests = 6
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = 4
	}
	if c.BlockSize == 0 {
		c.BlockSize = 16
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	switch {
	case c.PrefixTokens < 1 || c.SuffixTokens < 1 || c.MaxTokens < 1 || c.BlockSize < 1:
		return fmt.Errorf("%w: ttft lengths must be positive", ErrConfig)
	case c.Requests < 2:
		return fmt.Errorf("%w: ttft needs at least 2 requests, got %d", ErrConfig, c.Requests)
	case c.PrefixTokens+c.SuffixTokens+c.MaxTokens > m.Config.SeqLen:
		return fmt.Errorf("%w: a prefix of %d, a suffix of %d and %d new tokens pass the context of %d",
			ErrConfig, c.PrefixTokens, c.SuffixTokens, c.MaxTokens, m.Config.SeqLen)
	}
	return nil
}

// Latency summarises the times to first token of the measured requests, in milliseconds.
type Latency struct {
	MedianMS float64 `json:"median_ms"`
	MeanMS   float64 `json:"mean_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`
}

func newLatency(ds []time.Duration) Latency {
	ms := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	slices.Sort(ms)
	l := Latency{MeanMS: sum / float64(len(ms)), MinMS: ms[0], MaxMS: ms[len(ms)-1]}
	if n := len(ms); n%2 == 1 {
		l.MedianMS = ms[n/2]
	} else {
		l.MedianMS = (ms[n/2-1] + ms[n/2]) / 2
	}
	return l
}

// TTFTResult compares the time to first token of requests sharing a prefix with prefix
// caching on and off.
type TTFTResult struct {
	PrefixTokens int `json:"prefix_tokens"`
	SuffixTokens int `json:"suffix_tokens"`
	Measured     int `json:"measured_requests"`
	// Cached and Uncached are the times to first token of requests 2..N with prefix caching
	// on and off.
	Cached   Latency `json:"cached"`
	Uncached Latency `json:"uncached"`
	// HitRate is the share of prompt tokens the cached run found in the prefix cache.
	HitRate float64 `json:"prefix_hit_rate"`
	// Ratio is the cached median over the uncached median.
	Ratio  float64 `json:"ratio"`
	Target float64 `json:"target"`
	Pass   bool    `json:"pass"`
}

// TTFT sends cfg.Requests requests, one after the other, that share a prefix of
// PrefixTokens and differ in a suffix of SuffixTokens, to an engine with prefix caching
// and to one without, and compares their times to first token (Submit to the first event)
// over the requests after the first. Requests run alone, so the time is the prefill's and
// not a queue's.
func TTFT(ctx context.Context, m *model.Model, cfg TTFTConfig) (TTFTResult, error) {
	if err := cfg.validate(m); err != nil {
		return TTFTResult{}, err
	}
	vocab := m.Config.Vocab
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x74746674)) // "ttft"
	prefix := randomPrompt(rng, cfg.PrefixTokens, vocab)
	reqs := make([]engine.Request, cfg.Requests)
	for i := range reqs {
		reqs[i] = engine.Request{
			Prompt:    appendRandom(slices.Clone(prefix), rng, cfg.SuffixTokens, vocab),
			MaxTokens: cfg.MaxTokens,
			Sampling:  sample.Params{Temperature: 0},
		}
	}
	res := TTFTResult{PrefixTokens: cfg.PrefixTokens, SuffixTokens: cfg.SuffixTokens, Measured: cfg.Requests - 1, Target: TTFTTarget}
	var err error
	var st engine.Stats
	var cached, uncached []time.Duration
	if cached, st, err = sequentialTTFT(ctx, m, cfg, reqs, false); err != nil {
		return res, err
	}
	if st.PrefixQueried > 0 {
		res.HitRate = float64(st.PrefixHit) / float64(st.PrefixQueried)
	}
	if uncached, _, err = sequentialTTFT(ctx, m, cfg, reqs, true); err != nil {
		return res, err
	}
	res.Cached, res.Uncached = newLatency(cached[1:]), newLatency(uncached[1:])
	if res.Uncached.MedianMS > 0 {
		res.Ratio = res.Cached.MedianMS / res.Uncached.MedianMS
	}
	res.Pass = res.Ratio <= TTFTTarget
	return res, nil
}

// sequentialTTFT runs reqs one at a time on a new engine and returns their times to first
// token and the engine's last snapshot.
func sequentialTTFT(ctx context.Context, m *model.Model, cfg TTFTConfig, reqs []engine.Request, noCaching bool) ([]time.Duration, engine.Stats, error) {
	e, err := engine.New(m, engine.Config{BlockSize: cfg.BlockSize, NoPrefixCaching: noCaching, Threads: cfg.Threads})
	if err != nil {
		return nil, engine.Stats{}, fmt.Errorf("serving: ttft: %w", err)
	}
	defer shutdown(e)
	ttft := make([]time.Duration, len(reqs))
	for i, r := range reqs {
		outs, err := run(ctx, e, []engine.Request{r})
		if err != nil {
			return nil, engine.Stats{}, err
		}
		ttft[i] = outs[0].ttft()
	}
	st, err := settle(ctx, e)
	return ttft, st, err
}
