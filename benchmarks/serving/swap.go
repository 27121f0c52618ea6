package serving

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
)

// SwapTarget is the least throughput of the run whose disk tier carries three quarters of
// the working set, as a fraction of the run that fits in memory.
const SwapTarget = 0.5

// SwapConfig configures Swap. Zero values take the documented defaults.
type SwapConfig struct {
	// Groups is the number of distinct shared prefixes. Default 8.
	Groups int
	// PrefixTokens is the length of each group's prefix, BOS included; a multiple of
	// BlockSize. Default 512.
	PrefixTokens int
	// PerVisit is the number of requests of one visit to a group, submitted together.
	// Default 4.
	PerVisit int
	// SuffixTokens is the length of each request's distinct suffix. Default 16.
	SuffixTokens int
	// MaxTokens is each request's max_tokens (greedy). Default 16.
	MaxTokens int
	// Rounds is the number of round-robin passes over the groups; the first fills the
	// caches and is not timed. Default 3.
	Rounds int
	// BlockSize is the engine's tokens per KV block. Default 16.
	BlockSize int
	// Threads is the number of kernel threads. Default: one per core.
	Threads int
	// Repeat is the number of times the four runs are made, in turn; each run's fastest
	// counts. Default 1.
	Repeat int
	// EagerHigh and EagerLow are the watermarks of an extra run with a quarter of the memory
	// and the disk tier, which moves cold blocks to disk as soon as they are freed.
	// Defaults 0.2 and 0.1.
	EagerHigh, EagerLow float64
	// Dir is where the disk tier's file goes, in a new directory removed afterwards.
	// Default: the system's temporary directory.
	Dir string
	// Seed seeds the prompts. Default 1.
	Seed uint64
}

func (c *SwapConfig) fill() {
	if c.Groups == 0 {
		c.Groups = 8
	}
	if c.PrefixTokens == 0 {
		c.PrefixTokens = 512
	}
	if c.PerVisit == 0 {
		c.PerVisit = 4
	}
	if c.SuffixTokens == 0 {
		c.SuffixTokens = 16
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = 16
	}
	if c.Rounds == 0 {
		c.Rounds = 3
	}
	if c.BlockSize == 0 {
		c.BlockSize = 16
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Repeat == 0 {
		c.Repeat = 1
	}
	if c.EagerHigh == 0 {
		c.EagerHigh = 0.2
	}
	if c.EagerLow == 0 {
		c.EagerLow = 0.1
	}
}

// memory returns the working set in blocks and the blocks of the small runs: a quarter of
// it, or the engine's minimum. The working set is what one round leaves cached: each
// group's prefix and the blocks of its last visit's requests (their full blocks stay
// cached too, and take their place in the LRU order).
func (c *SwapConfig) memory(seqLen int) (working, quarter int) {
	bs := c.BlockSize
	visit := c.PerVisit * blocksFor(c.SuffixTokens+c.MaxTokens, bs)
	working = c.Groups * (c.PrefixTokens/bs + visit)
	return working, max(blocksFor(working, 4), blocksFor(seqLen, bs))
}

func (c *SwapConfig) validate(m *model.Model) error {
	c.fill()
	switch {
	case c.Groups < 2 || c.PerVisit < 1 || c.Rounds < 2 || c.Repeat < 1:
		return fmt.Errorf("%w: swap needs 2 groups, 1 request per visit, 2 rounds and 1 repetition", ErrConfig)
	case c.BlockSize < 1 || c.PrefixTokens < c.BlockSize || c.PrefixTokens%c.BlockSize != 0:
		return fmt.Errorf("%w: prefix of %d tokens is not a multiple of the block size %d", ErrConfig, c.PrefixTokens, c.BlockSize)
	case c.SuffixTokens < 1 || c.MaxTokens < 1:
		return fmt.Errorf("%w: suffix and max_tokens must be positive", ErrConfig)
	case c.PrefixTokens+c.SuffixTokens+c.MaxTokens > m.Config.SeqLen:
		return fmt.Errorf("%w: a prefix of %d, a suffix of %d and %d new tokens pass the context of %d",
			ErrConfig, c.PrefixTokens, c.SuffixTokens, c.MaxTokens, m.Config.SeqLen)
	}
	working, quarter := c.memory(m.Config.SeqLen)
	if quarter*2 > working {
		return fmt.Errorf("%w: a working set of %d blocks is under twice the engine's minimum memory (%d blocks)", ErrConfig, working, quarter)
	}
	return nil
}

// SwapRun is one run of the revisit workload.
type SwapRun struct {
	Name   string `json:"name"`
	Blocks int    `json:"kv_blocks"`
	Tier   bool   `json:"disk_tier"`
	// SwapHigh and SwapLow are the watermarks of a run with a tier (0: the engine's).
	SwapHigh float64 `json:"swap_high,omitempty"`
	SwapLow  float64 `json:"swap_low,omitempty"`
	// Rate is over the timed rounds (all but the first), of the fastest repetition;
	// Seconds are the timed rounds' wall times of every repetition.
	Rate    Rate      `json:"rate"`
	Seconds []float64 `json:"seconds"`
	// SwapOutBytes and SwapInBytes are the bytes written to and read from the disk tier
	// during the timed rounds.
	SwapOutBytes int64 `json:"swap_out_bytes"`
	SwapInBytes  int64 `json:"swap_in_bytes"`
	// PrefixHitRate is the share of prompt tokens found cached (memory or disk) in the timed
	// rounds.
	PrefixHitRate float64 `json:"prefix_hit_rate"`
	Preemptions   int64   `json:"preemptions"`
}

// SwapResult compares throughput on a working set of shared prefixes four times the
// memory, with the disk tier and without, against memory for all of it.
type SwapResult struct {
	Groups       int `json:"groups"`
	PrefixTokens int `json:"prefix_tokens"`
	// WorkingSetBlocks is every prefix plus one visit's own blocks.
	WorkingSetBlocks int `json:"working_set_blocks"`
	// Full has memory for the working set; Tier a quarter and the disk tier with the
	// engine's watermarks; Recompute a quarter and no tier; Eager a quarter and the disk
	// tier with watermarks EagerHigh and EagerLow.
	Full      SwapRun `json:"full_memory"`
	Tier      SwapRun `json:"quarter_memory_disk_tier"`
	Recompute SwapRun `json:"quarter_memory_recompute"`
	Eager     SwapRun `json:"quarter_memory_eager_tier"`
	// Ratio is Tier's requests/s over Full's; RecomputeRatio and EagerRatio are
	// Recompute's and Eager's over Full's.
	Ratio          float64 `json:"ratio"`
	RecomputeRatio float64 `json:"recompute_ratio"`
	// CPURatio is Tier's requests per CPU-second over Full's.
	CPURatio   float64 `json:"cpu_ratio"`
	EagerRatio float64 `json:"eager_ratio"`
	Target     float64 `json:"target"`
	Pass       bool    `json:"pass"`
}

// Swap visits Groups prefixes round-robin, PerVisit requests per visit (a visit waits for
// the previous one), on three engines: memory for the whole working set; a quarter of it
// with the disk tier (default watermarks), so that cold prefixes move to disk and come back
// on the next visit; and a quarter without a tier, so that they are recomputed. Memory
// that holds a quarter of the prefixes under LRU misses on every round-robin revisit, so
// the small runs serve no prefix from memory after the first round.
func Swap(ctx context.Context, m *model.Model, cfg SwapConfig) (SwapResult, error) {
	if err := cfg.validate(m); err != nil {
		return SwapResult{}, err
	}
	working, quarter := cfg.memory(m.Config.SeqLen)
	visits := swapVisits(cfg, m.Config.Vocab)
	res := SwapResult{Groups: cfg.Groups, PrefixTokens: cfg.PrefixTokens, WorkingSetBlocks: working, Target: SwapTarget}
	dir, err := os.MkdirTemp(cfg.Dir, "servebench-swap-")
	if err != nil {
		return res, fmt.Errorf("serving: swap: %w", err)
	}
	defer os.RemoveAll(dir)

	runs := []struct {
		out       *SwapRun
		name      string
		blocks    int
		tier      bool
		high, low float64
	}{
		{&res.Full, "full memory", working, false, 0, 0},
		{&res.Tier, "quarter memory + disk tier", quarter, true, 0, 0},
		{&res.Recompute, "quarter memory, recompute", quarter, false, 0, 0},
		{&res.Eager, "quarter memory + eager disk tier", quarter, true, cfg.EagerHigh, cfg.EagerLow},
	}
	for rep := range cfg.Repeat {
		for i, r := range runs {
			ecfg := engine.Config{BlockSize: cfg.BlockSize, NumBlocks: r.blocks, Threads: cfg.Threads, SwapHigh: r.high, SwapLow: r.low}
			if r.tier {
				ecfg.SwapPath = filepath.Join(dir, fmt.Sprintf("swap%d-%d.db", i, rep))
			}
			got, err := swapRun(ctx, m, ecfg, cfg, visits)
			if err != nil {
				return res, err
			}
			got.Seconds = append(r.out.Seconds, got.Rate.Seconds)
			if rep == 0 || got.Rate.Seconds < r.out.Rate.Seconds {
				*r.out = got
			} else {
				r.out.Seconds = got.Seconds
			}
			r.out.Name, r.out.Blocks, r.out.Tier, r.out.SwapHigh, r.out.SwapLow = r.name, r.blocks, r.tier, r.high, r.low
		}
	}
	if full := res.Full.Rate.RequestsS; full > 0 {
		res.Ratio = res.Tier.Rate.RequestsS / full
		res.RecomputeRatio = res.Recompute.Rate.RequestsS / full
		res.EagerRatio = res.Eager.Rate.RequestsS / full
	}
	if full := res.Full.Rate.RequestsCPU; full > 0 {
		res.CPURatio = res.Tier.Rate.RequestsCPU / full
	}
	res.Pass = res.Ratio >= SwapTarget
	return res, nil
}

// swapVisits builds the visits in order: round r, group g is visits[r*Groups+g].
func swapVisits(cfg SwapConfig, vocab int) [][]engine.Request {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x73776170)) // "swap"
	prefixes := make([][]int, cfg.Groups)
	for g := range prefixes {
		prefixes[g] = randomPrompt(rng, cfg.PrefixTokens, vocab)
	}
	visits := make([][]engine.Request, 0, cfg.Rounds*cfg.Groups)
	for range cfg.Rounds {
		for g := range cfg.Groups {
			v := make([]engine.Request, cfg.PerVisit)
			for i := range v {
				v[i] = engine.Request{
					Prompt:    appendRandom(slices.Clone(prefixes[g]), rng, cfg.SuffixTokens, vocab),
					MaxTokens: cfg.MaxTokens,
					Sampling:  sample.Params{Temperature: 0},
				}
			}
			visits = append(visits, v)
		}
	}
	return visits
}

// swapRun runs the visits on one engine and measures the rounds after the first.
func swapRun(ctx context.Context, m *model.Model, ecfg engine.Config, cfg SwapConfig, visits [][]engine.Request) (SwapRun, error) {
	e, err := engine.New(m, ecfg)
	if err != nil {
		return SwapRun{}, fmt.Errorf("serving: swap: %w", err)
	}
	defer shutdown(e)
	var before engine.Stats
	var c clock
	requests, tokens := 0, 0
	for i, v := range visits {
		if i == cfg.Groups {
			if before, err = settle(ctx, e); err != nil {
				return SwapRun{}, err
			}
			c = startClock()
		}
		outs, err := run(ctx, e, v)
		if err != nil {
			return SwapRun{}, err
		}
		if i >= cfg.Groups {
			requests += len(outs)
			tokens += generated(outs)
		}
	}
	rate := c.rate(requests, tokens)
	after, err := settle(ctx, e)
	if err != nil {
		return SwapRun{}, err
	}
	out := SwapRun{
		Rate:         rate,
		SwapOutBytes: after.SwapBytesOut - before.SwapBytesOut,
		SwapInBytes:  after.SwapBytesIn - before.SwapBytesIn,
		Preemptions:  after.Preemptions - before.Preemptions,
	}
	if q := after.PrefixQueried - before.PrefixQueried; q > 0 {
		out.PrefixHitRate = float64(after.PrefixHit-before.PrefixHit) / float64(q)
	}
	return out, nil
}
