package serving

import (
	"context"
	"fmt"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
)

// WasteTarget is the most KV memory waste the paged cache may show (the 4%).
const WasteTarget = 0.04

// WasteConfig configures Waste. Zero values take the documented defaults.
type WasteConfig struct {
	// Mix is the workload; its defaults are Mix's.
	Mix Mix
	// BlockSize is the engine's tokens per KV block. Default 16 (the engine's).
	BlockSize int
	// MaxRunning is the most sequences the engine runs at once. Default 64 (the engine's).
	MaxRunning int
	// Threads is the number of kernel threads. Default: one per core.
	Threads int
	// Poll is the interval at which the engine's snapshot is read. Default 200µs.
	Poll time.Duration
}

func (c *WasteConfig) validate(m *model.Model) error {
	if c.BlockSize == 0 {
		c.BlockSize = 16
	}
	if c.MaxRunning == 0 {
		c.MaxRunning = 64
	}
	if c.Poll == 0 {
		c.Poll = 200 * time.Microsecond
	}
	if c.BlockSize < 1 || c.MaxRunning < 1 || c.Poll < 0 {
		return fmt.Errorf("%w: block size %d, max running %d, poll %v", ErrConfig, c.BlockSize, c.MaxRunning, c.Poll)
	}
	return c.Mix.validate(m.Config.SeqLen)
}

// WasteResult is the time-averaged KV memory waste of one run, paged (measured) and
// contiguous (computed from the same run's sequences).
type WasteResult struct {
	BlockSize       int     `json:"block_size"`
	Requests        int     `json:"requests"`
	GeneratedTokens int     `json:"generated_tokens"`
	Seconds         float64 `json:"seconds"`
	// PagedWaste is 1 − held/reserved for the engine's paged cache: reserved is the blocks
	// held by sequences (shared blocks once) times the block size, held the tokens whose
	// K/V they hold; both integrated over the run's wall time.
	PagedWaste float64 `json:"paged_waste"`
	// ContiguousWaste is the same ratio when every running sequence reserves prompt +
	// max_tokens slots from its admission.
	ContiguousWaste float64 `json:"contiguous_waste"`
	// Ratio is ContiguousWaste / PagedWaste.
	Ratio float64 `json:"ratio"`
	// MeanRunning is the time-averaged number of running sequences.
	MeanRunning float64 `json:"mean_running"`
	// MeanHeldTokens is the time-averaged number of tokens held per running sequence.
	MeanHeldTokens float64 `json:"mean_held_tokens_per_seq"`
	// Coverage is the share of the run's wall time covered by snapshots that agreed with
	// the events drained (the rest is left out of both averages).
	Coverage float64 `json:"coverage"`
	// StepsSeen is the number of distinct engine snapshots read; StepsTotal the number the
	// engine published.
	StepsSeen  int64   `json:"steps_seen"`
	StepsTotal int64   `json:"steps_total"`
	Target     float64 `json:"target"`
	Pass       bool    `json:"pass"`
}

// liveReq is the state of one request as its events show it.
type liveReq struct {
	ch              <-chan engine.Event
	prompt, maxToks int
	gen             int
	started, done   bool
	err             error
}

// drain takes the events already sent without waiting.
func (l *liveReq) drain() {
	for !l.done {
		select {
		case ev, ok := <-l.ch:
			if !ok {
				l.started, l.done = true, true
				return
			}
			l.started = true
			switch {
			case ev.Err != nil:
				l.err = ev.Err
			case ev.Finish == "":
				l.gen++
			}
		default:
			return
		}
	}
}

// wasteSample is the KV state after one engine step.
type wasteSample struct {
	running     int
	paged       int // slots reserved by the paged cache: blocks in use × block size
	contiguous  int // slots a contiguous allocator would reserve: Σ prompt + max_tokens
	held        int // tokens whose K/V are cached: Σ prompt + generated − 1
	derivedUsed int // blocks the running sequences need: Σ ⌈held/blockSize⌉
}

// sampleWaste reads the running set from the drained events: a request that produced an
// event and has not ended is running, and holds K/V for its prompt and all its tokens but
// the last sampled one (which the next step runs).
func sampleWaste(st engine.Stats, live []liveReq, bs int) wasteSample {
	s := wasteSample{paged: (st.BlocksTotal - st.BlocksFree) * bs}
	for i := range live {
		l := &live[i]
		if !l.started || l.done {
			continue
		}
		h := l.prompt + l.gen - 1
		s.running++
		s.held += h
		s.contiguous += l.prompt + l.maxToks
		s.derivedUsed += blocksFor(h, bs)
	}
	return s
}

// consistent reports whether the sample's running set is the engine's: the same number of
// running sequences, holding exactly the engine's blocks in use.
func (s wasteSample) consistent(st engine.Stats, bs int) bool {
	return s.running == st.Running && s.derivedUsed*bs == s.paged
}

// wasteAcc integrates samples over wall time.
type wasteAcc struct {
	paged, contiguous, held, running float64 // slot·seconds (running: sequence·seconds)
	covered                          float64 // seconds
}

func (a *wasteAcc) add(s wasteSample, dt float64) {
	a.paged += float64(s.paged) * dt
	a.contiguous += float64(s.contiguous) * dt
	a.held += float64(s.held) * dt
	a.running += float64(s.running) * dt
	a.covered += dt
}

// Waste runs cfg.Mix through an engine whose memory holds MaxRunning sequences of the
// mix's longest length (so nothing is preempted) and whose step budget prefills every
// admitted prompt in one step (so no sequence is caught mid-prefill), and measures the KV
// memory waste of its paged cache against contiguous reservation.
//
// The engine publishes a snapshot (engine.Stats) after every step; Waste polls it every
// cfg.Poll, and on each new snapshot drains the requests' events to learn which sequences
// run and how many tokens each holds. A snapshot whose running set disagrees with the
// engine's (a step's events drained only in part, or a step missed between two polls) is
// left out; Coverage says how much of the run was kept. An exact figure needs the engine
// to report the tokens it holds in its snapshot (see docs/benchmarks-serving.md, Needs).
func Waste(ctx context.Context, m *model.Model, cfg WasteConfig) (WasteResult, error) {
	if err := cfg.validate(m); err != nil {
		return WasteResult{}, err
	}
	bs := cfg.BlockSize
	reqs := cfg.Mix.build(m.Config.Vocab)
	e, err := engine.New(m, engine.Config{
		BlockSize:      bs,
		NumBlocks:      max(cfg.MaxRunning*blocksFor(cfg.Mix.maxLen(), bs), blocksFor(m.Config.SeqLen, bs)),
		MaxRunning:     cfg.MaxRunning,
		MaxBatchTokens: cfg.MaxRunning * (cfg.Mix.PromptMax + 1),
		MaxWaiting:     len(reqs),
		Threads:        cfg.Threads,
	})
	if err != nil {
		return WasteResult{}, fmt.Errorf("serving: waste: %w", err)
	}
	defer shutdown(e)

	live := make([]liveReq, len(reqs))
	start := time.Now()
	for i, r := range reqs {
		ch, err := e.Submit(ctx, r)
		if err != nil {
			return WasteResult{}, fmt.Errorf("serving: waste: submit request %d: %w", i, err)
		}
		live[i] = liveReq{ch: ch, prompt: len(r.Prompt), maxToks: r.MaxTokens}
	}

	var acc wasteAcc
	res := WasteResult{BlockSize: bs, Requests: len(reqs), Target: WasteTarget}
	lastSteps := int64(-1)
	var cur wasteSample
	curOK := false
	curAt := start
	for open := len(live); open > 0; {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		st := e.Stats()
		open = 0
		for i := range live {
			live[i].drain()
			if !live[i].done {
				open++
			}
		}
		if st.Steps != lastSteps {
			now := time.Now()
			if curOK {
				acc.add(cur, now.Sub(curAt).Seconds())
			}
			cur = sampleWaste(st, live, bs)
			curOK, curAt, lastSteps = cur.consistent(st, bs), now, st.Steps
			res.StepsSeen++
		}
		if open > 0 {
			time.Sleep(cfg.Poll)
		}
	}
	end := time.Now()
	if curOK {
		acc.add(cur, end.Sub(curAt).Seconds())
	}
	for i := range live {
		if live[i].err != nil {
			return res, fmt.Errorf("%w: request %d: %w", ErrRequest, i, live[i].err)
		}
		res.GeneratedTokens += live[i].gen
	}
	res.Seconds = end.Sub(start).Seconds()
	res.StepsTotal = e.Stats().Steps
	if acc.paged == 0 || acc.contiguous == 0 || acc.covered == 0 {
		return res, fmt.Errorf("serving: waste: no consistent snapshot of the engine in %d read", res.StepsSeen)
	}
	res.PagedWaste = 1 - acc.held/acc.paged
	res.ContiguousWaste = 1 - acc.held/acc.contiguous
	if res.PagedWaste > 0 {
		res.Ratio = res.ContiguousWaste / res.PagedWaste
	}
	res.MeanRunning = acc.running / acc.covered
	if acc.running > 0 {
		res.MeanHeldTokens = acc.held / acc.running
	}
	res.Coverage = acc.covered / res.Seconds
	res.Pass = res.PagedWaste < WasteTarget
	return res, nil
}
