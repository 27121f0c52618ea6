package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/internal/reftest"
	"github.com/kvmesh/kvmesh/internal/testmodel"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/kvindex"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
)

// refCase is one reference generation of llama2.c's run.c.
type refCase = reftest.Case

// expect is the tokens the engine must emit for the case and how the sample ends: run.c's
// generated ids without the BOS that ends a story.
func expect(c refCase) ([]int, FinishReason) {
	if c.EndsAtBOS() {
		return c.Tokens(), FinishStop
	}
	return c.Tokens(), FinishLength
}

func requestOf(c refCase) Request {
	return Request{
		Prompt:    c.PromptIDs,
		MaxTokens: c.MaxTokens(),
		Sampling:  sample.Params{Temperature: c.Temperature, TopP: c.TopP, Seed: c.Seed},
	}
}

// longCases are the greedy cases with 48 generated tokens moved into the prompt.
func longCases(greedy []refCase) []refCase {
	var out []refCase
	for _, c := range greedy {
		if len(c.GeneratedIDs) > 64 {
			out = append(out, c.Continued(48))
		}
	}
	return out
}

func loadReference(t testing.TB) (greedy, sampled []refCase) { return reftest.Load(t) }

func loadModel(t testing.TB) *model.Model { return testmodel.Load(t) }

func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(loadModel(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := e.cache.Check(); err != nil {
			t.Errorf("cache invariants after shutdown: %v", err)
		}
		if free, total := e.cache.NumFree(), e.cache.NumBlocks(); free != total {
			t.Errorf("%d of %d blocks free after shutdown", free, total)
		}
	})
	return e
}

// result is what one request produced.
type result struct {
	tokens [][]int
	finish []FinishReason
	err    error
}

func collect(events <-chan Event, n int) result {
	res := result{tokens: make([][]int, n), finish: make([]FinishReason, n)}
	for ev := range events {
		switch {
		case ev.Err != nil:
			res.err = ev.Err
		case ev.Finish != "":
			res.finish[ev.Index] = ev.Finish
		default:
			res.tokens[ev.Index] = append(res.tokens[ev.Index], ev.Token)
		}
	}
	return res
}

// runAll submits every request at once and waits for all results.
func runAll(t *testing.T, e *Engine, reqs []Request) []result {
	t.Helper()
	chans := make([]<-chan Event, len(reqs))
	for i, r := range reqs {
		ch, err := e.Submit(context.Background(), r)
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		chans[i] = ch
	}
	out := make([]result, len(reqs))
	for i, ch := range chans {
		out[i] = collect(ch, max(1, reqs[i].N))
		if out[i].err != nil {
			t.Fatalf("request %d: %v", i, out[i].err)
		}
	}
	return out
}

func checkCase(t *testing.T, c refCase, got []int, finish FinishReason) {
	t.Helper()
	want, why := expect(c)
	if fmt.Sprint(got) != fmt.Sprint(want) || finish != why {
		t.Errorf("prompt %q seed %d: got %d tokens (%s), want %d (%s)\n got %v\nwant %v",
			c.Prompt, c.Seed, len(got), finish, len(want), why, got, want)
	}
}

// TestOutputsMatchReference runs all reference cases together under configurations that
// force each mechanism: batching, chunked prefill, prefix-cache hits, preemption by
// recomputing and by swapping, and the disk tier under memory pressure.
func TestOutputsMatchReference(t *testing.T) {
	greedy, sampled := loadReference(t)
	cases := append(append(append([]refCase(nil), greedy...), sampled...), longCases(greedy)...)
	swapPath := func(t *testing.T) string { return filepath.Join(t.TempDir(), "swap.db") }
	tests := []struct {
		name   string
		cfg    func(t *testing.T) Config
		rounds int // how many times the whole set is submitted (later rounds hit the prefix cache)
		check  func(t *testing.T, st Stats)
	}{
		{"batched", func(*testing.T) Config { return Config{} }, 1, nil},
		{"chunked prefill", func(*testing.T) Config { return Config{MaxBatchTokens: 8, PrefillChunk: 3} }, 1, nil},
		{"no prefix caching", func(*testing.T) Config { return Config{NoPrefixCaching: true} }, 2, func(t *testing.T, st Stats) {
			if st.PrefixHit != 0 {
				t.Errorf("prefix hits with caching off: %d", st.PrefixHit)
			}
		}},
		{"prefix cache hits", func(*testing.T) Config { return Config{} }, 2, func(t *testing.T, st Stats) {
			if st.PrefixHit == 0 {
				t.Error("the second round hit nothing in the prefix cache")
			}
		}},
		{"preempt recompute", func(*testing.T) Config { return Config{NumBlocks: 40, BlockSize: 16} }, 1, func(t *testing.T, st Stats) {
			if st.Preemptions == 0 {
				t.Error("no preemption happened")
			}
		}},
		{"preempt swap", func(t *testing.T) Config {
			return Config{NumBlocks: 40, Preemption: Swap, SwapPath: swapPath(t)}
		}, 1, func(t *testing.T, st Stats) {
			if st.Preemptions == 0 || st.SwapBytesIn == 0 {
				t.Errorf("preemptions %d, swap bytes in %d: swapping never happened", st.Preemptions, st.SwapBytesIn)
			}
		}},
		{"disk tier under pressure", func(t *testing.T) Config {
			return Config{NumBlocks: 64, SwapPath: swapPath(t), SwapHigh: 0.5, SwapLow: 0.3}
		}, 2, func(t *testing.T, st Stats) {
			if st.SwapBytesOut == 0 || st.SwapBytesIn == 0 {
				t.Errorf("swap bytes out %d in %d: the disk tier was not used", st.SwapBytesOut, st.SwapBytesIn)
			}
		}},
		{"block size 1, short first", func(*testing.T) Config { return Config{BlockSize: 1, Policy: ShortFirst} }, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.cfg(t))
			for range tt.rounds {
				reqs := make([]Request, len(cases))
				for i, c := range cases {
					reqs[i] = requestOf(c)
				}
				for i, res := range runAll(t, e, reqs) {
					checkCase(t, cases[i], res.tokens[0], res.finish[0])
				}
			}
			if tt.check != nil {
				tt.check(t, e.Stats())
			}
		})
	}
}

// TestForkedSamples checks n > 1: every sample equals the single request with its seed,
// and the samples shared the prompt's blocks.
func TestForkedSamples(t *testing.T) {
	e := newEngine(t, Config{})
	_, sampled := loadReference(t)
	c := sampled[0]
	req := requestOf(c)
	req.N = 3
	res := runAll(t, e, []Request{req})[0]
	checkCase(t, c, res.tokens[0], res.finish[0])
	for i := 1; i < 3; i++ {
		solo := requestOf(c)
		solo.Sampling.Seed += uint64(i)
		want := runAll(t, e, []Request{solo})[0]
		if fmt.Sprint(res.tokens[i]) != fmt.Sprint(want.tokens[0]) {
			t.Errorf("sample %d differs from the solo request with seed %d", i, solo.Sampling.Seed)
		}
	}
}

func TestCancelFreesBlocks(t *testing.T) {
	e := newEngine(t, Config{})
	greedy, _ := loadReference(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := e.Submit(ctx, requestOf(greedy[0]))
	if err != nil {
		t.Fatal(err)
	}
	<-ch // one token arrived: the sequence is running
	cancel()
	res := collect(ch, 1)
	if res.err == nil {
		t.Fatal("a cancelled request ended without an error")
	}
	waitFor(t, func() bool { st := e.Stats(); return st.BlocksFree == st.BlocksTotal && st.Running == 0 })
}

func TestSubmitRejects(t *testing.T) {
	e := newEngine(t, Config{MaxWaiting: 1})
	ctxLen := loadModel(t).Config.SeqLen
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"empty prompt", Request{MaxTokens: 1}, ErrInvalid},
		{"no max tokens", Request{Prompt: []int{1}}, ErrInvalid},
		{"token out of vocabulary", Request{Prompt: []int{1, 9999}, MaxTokens: 1}, ErrInvalid},
		{"bad temperature", Request{Prompt: []int{1}, MaxTokens: 1, Sampling: sample.Params{Temperature: -1}}, ErrInvalid},
		{"prompt past context", Request{Prompt: make([]int, ctxLen+1), MaxTokens: 1}, ErrTooLong},
		{"tokens past context", Request{Prompt: []int{1}, MaxTokens: ctxLen + 1}, ErrTooLong},
	}
	for _, tt := range tests {
		if _, err := e.Submit(context.Background(), tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestQueueFull(t *testing.T) {
	e := newEngine(t, Config{MaxWaiting: 2, MaxRunning: 1})
	greedy, _ := loadReference(t)
	var chans []<-chan Event
	full := false
	for range 20 {
		ch, err := e.Submit(context.Background(), requestOf(greedy[0]))
		if errors.Is(err, ErrQueueFull) {
			full = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	if !full {
		t.Error("20 submissions to a queue of 2 were all accepted")
	}
	for _, ch := range chans {
		if res := collect(ch, 1); res.err != nil {
			t.Error(res.err)
		}
	}
}

// TestWarmRestart moves cached prefixes to disk, restarts the engine on the same file, and
// checks that the prompts hit the prefix cache from disk with unchanged output.
func TestWarmRestart(t *testing.T) {
	greedy, _ := loadReference(t)
	path := filepath.Join(t.TempDir(), "swap.db")
	cfg := Config{NumBlocks: 64, SwapPath: path, SwapHigh: 0.05, SwapLow: 0.01}
	greedy = longCases(greedy)
	reqs := make([]Request, len(greedy))
	for i, c := range greedy {
		reqs[i] = requestOf(c)
	}
	first, err := New(loadModel(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	runAll(t, first, reqs)
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first.Stats().SwapBytesOut == 0 {
		t.Fatal("nothing was written to disk")
	}
	e := newEngine(t, cfg)
	for i, res := range runAll(t, e, reqs) {
		checkCase(t, greedy[i], res.tokens[0], res.finish[0])
	}
	if st := e.Stats(); st.PrefixHit == 0 || st.SwapBytesIn == 0 {
		t.Errorf("after a restart: prefix hits %d, bytes read from disk %d", st.PrefixHit, st.SwapBytesIn)
	}
}

// TestKVBudgetQuarterOfWorkingSet runs 200 requests with KV memory for a quarter of what
// they need at once, swapping preempted sequences to disk: all complete, outputs unchanged.
func TestKVBudgetQuarterOfWorkingSet(t *testing.T) {
	greedy, _ := loadReference(t)
	const n = 200
	reqs := make([]Request, n)
	need := 0
	for i := range reqs {
		c := greedy[i%len(greedy)]
		reqs[i] = requestOf(c)
		need += (c.Steps + 15) / 16
	}
	running := 32
	workingSet := need * running / n // blocks of the sequences that run at once
	e := newEngine(t, Config{
		NumBlocks: max(workingSet/4, 33), MaxRunning: running, MaxWaiting: n,
		Preemption: Swap, SwapPath: filepath.Join(t.TempDir(), "swap.db"),
	})
	for i, res := range runAll(t, e, reqs) {
		checkCase(t, greedy[i%len(greedy)], res.tokens[0], res.finish[0])
	}
	st := e.Stats()
	t.Logf("%d blocks for a working set of %d: %d preemptions, %d bytes swapped out", st.BlocksTotal, workingSet, st.Preemptions, st.SwapBytesOut)
	if st.Preemptions == 0 {
		t.Error("no preemption: the budget did not bind")
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestResumedRequest cuts generations at several points and resumes them as new requests
// with the generated tokens in the prompt: the resumed output is the rest of the original,
// for greedy and seeded sampling alike.
func TestResumedRequest(t *testing.T) {
	e := newEngine(t, Config{})
	greedy, sampled := loadReference(t)
	for _, c := range []refCase{greedy[0], sampled[0], sampled[2]} {
		want, why := expect(c)
		for _, k := range []int{1, 17, len(want) / 2, len(want) - 1} {
			req := requestOf(c)
			req.Prompt = append(append([]int(nil), c.PromptIDs...), want[:k]...)
			req.Resumed = k
			res := runAll(t, e, []Request{req})[0]
			if fmt.Sprint(res.tokens[0]) != fmt.Sprint(want[k:]) || res.finish[0] != why {
				t.Errorf("prompt %q resumed after %d: got %v (%s), want %v (%s)", c.Prompt, k, res.tokens[0], res.finish[0], want[k:], why)
			}
		}
	}
	bad := requestOf(greedy[0])
	bad.Resumed = bad.MaxTokens
	if _, err := e.Submit(context.Background(), bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("resuming past max tokens: %v, want ErrInvalid", err)
	}
}

// TestKeySeedGivesRouterKeys checks that with a KeySeed the prefix cache's block keys are
// exactly kvindex.Keys of the tokens, what a router computes on its own.
func TestKeySeedGivesRouterKeys(t *testing.T) {
	greedy, _ := loadReference(t)
	seed := kvindex.Seed("model", "tokenizer", 16)
	e := newEngine(t, Config{KeySeed: seed, RecordEvents: true})
	c := longCases(greedy)[0]
	runAll(t, e, []Request{requestOf(c)})
	stored := map[blocks.BlockHash]bool{}
	for _, ev := range e.Events(nil) {
		if ev.Kind == blocks.Stored {
			stored[ev.Hash] = true
		}
	}
	want, _ := expect(c)
	tokens := append(append([]int(nil), c.PromptIDs...), want...)
	keys := kvindex.Keys(seed, tokens[:len(tokens)-1], 16) // the last token is never run
	if len(keys) == 0 {
		t.Fatal("no full block")
	}
	cached := map[blocks.BlockHash]bool{}
	for _, k := range e.CachedKeys(nil) {
		cached[k] = true
	}
	for i, k := range keys {
		if !stored[k] || !cached[k] {
			t.Errorf("block %d: key %x stored %v, listed as cached %v", i, k[:6], stored[k], cached[k])
		}
	}
}

// TestSwapInt8Agreement runs the reference prompts with the disk tier storing blocks as
// int8 and memory so small that prefixes come back from disk, and reports how many tokens
// agree with the bit-identical run; it also reports the bytes the int8 encoding saved.
func TestSwapInt8Agreement(t *testing.T) {
	greedy, _ := loadReference(t)
	cases := longCases(greedy)
	reqs := make([]Request, len(cases))
	for i, c := range cases {
		reqs[i] = requestOf(c)
	}
	run := func(int8 bool) ([]result, Stats) {
		e := newEngine(t, Config{NumBlocks: 64, SwapPath: filepath.Join(t.TempDir(), "swap.db"), SwapInt8: int8, SwapHigh: 0.05, SwapLow: 0.01})
		runAll(t, e, reqs) // the first round fills the disk with every prompt's blocks
		res := runAll(t, e, reqs)
		return res, e.Stats()
	}
	exact, stExact := run(false)
	approx, stInt8 := run(true)
	agree, total := 0, 0
	for i := range exact {
		a, b := exact[i].tokens[0], approx[i].tokens[0]
		for j := range max(len(a), len(b)) {
			total++
			if j < len(a) && j < len(b) && a[j] == b[j] {
				agree++
			}
		}
	}
	t.Logf("int8 on disk: %d of %d generated tokens agree with bit-identical swapping (%.1f%%); bytes written %d against %d (%.2fx)",
		agree, total, 100*float64(agree)/float64(total), stInt8.SwapBytesOut, stExact.SwapBytesOut, float64(stInt8.SwapBytesOut)/float64(stExact.SwapBytesOut))
	if stInt8.SwapBytesIn == 0 {
		t.Fatal("nothing came back from disk: the comparison measured nothing")
	}
	if stInt8.SwapBytesOut*2 > stExact.SwapBytesOut {
		t.Errorf("int8 wrote %d bytes, fp32 %d: less than a 2x saving", stInt8.SwapBytesOut, stExact.SwapBytesOut)
	}
}
