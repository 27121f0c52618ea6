package serving

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
)

const modelPath = "../../models/stories260K.bin"

var (
	modelOnce sync.Once
	testModel *model.Model
	modelErr  error
)

func loadModel(t testing.TB) *model.Model {
	t.Helper()
	modelOnce.Do(func() {
		var ck *ckpt.Checkpoint
		if ck, modelErr = ckpt.Open(modelPath); modelErr == nil {
			testModel, modelErr = model.New(ck)
		}
	})
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return testModel
}

// smallMix is a workload that runs in about a second on stories260K.
func smallMix() Mix {
	return Mix{Requests: 16, PromptMin: 8, PromptMax: 80, MaxTokensMin: 4, MaxTokensMax: 48, Seed: 3}
}

func TestMixBuild(t *testing.T) {
	mix := smallMix()
	if err := mix.validate(512); err != nil {
		t.Fatal(err)
	}
	a, b := mix.build(512), mix.build(512)
	if len(a) != mix.Requests {
		t.Fatalf("%d requests, want %d", len(a), mix.Requests)
	}
	for i, r := range a {
		if !slices.Equal(r.Prompt, b[i].Prompt) || r.MaxTokens != b[i].MaxTokens || r.Sampling != b[i].Sampling {
			t.Fatalf("request %d differs between two builds of the same mix", i)
		}
		if n := len(r.Prompt); n < mix.PromptMin || n > mix.PromptMax || r.Prompt[0] != bos {
			t.Errorf("request %d: prompt of %d tokens starting %d, want %d..%d starting with BOS", i, n, r.Prompt[0], mix.PromptMin, mix.PromptMax)
		}
		for _, tok := range r.Prompt[1:] {
			if tok < 2 || tok >= 512 {
				t.Fatalf("request %d: token %d outside [2, 512)", i, tok)
			}
		}
		if r.MaxTokens < mix.MaxTokensMin || r.MaxTokens > mix.MaxTokensMax {
			t.Errorf("request %d: max_tokens %d outside %d..%d", i, r.MaxTokens, mix.MaxTokensMin, mix.MaxTokensMax)
		}
	}
	mix.Seed++
	if c := mix.build(512); slices.Equal(c[0].Prompt, a[0].Prompt) {
		t.Error("another seed gives the same first prompt")
	}
}

func TestConfigErrors(t *testing.T) {
	m := loadModel(t) // context 512
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"mix past the context", func() error {
			_, err := Waste(context.Background(), m, WasteConfig{Mix: Mix{PromptMax: 300, MaxTokensMax: 300}})
			return err
		}},
		{"mix with inverted prompt range", func() error {
			_, err := Static(context.Background(), m, StaticConfig{Mix: Mix{PromptMin: 50, PromptMax: 10}})
			return err
		}},
		{"static budget under one context", func() error {
			_, err := Static(context.Background(), m, StaticConfig{Batch: 1, Mix: Mix{PromptMax: 32, MaxTokensMax: 32}})
			return err
		}},
		{"ttft with one request", func() error {
			_, err := TTFT(context.Background(), m, TTFTConfig{PrefixTokens: 64, Requests: 1})
			return err
		}},
		{"ttft past the context", func() error {
			_, err := TTFT(context.Background(), m, TTFTConfig{})
			return err
		}},
		{"swap prefix not a multiple of the block size", func() error {
			_, err := Swap(context.Background(), m, SwapConfig{PrefixTokens: 100})
			return err
		}},
		{"swap working set too small", func() error {
			_, err := Swap(context.Background(), m, SwapConfig{Groups: 2, PrefixTokens: 64})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
}

// TestSampleWaste checks the waste figures of one snapshot against a hand count.
func TestSampleWaste(t *testing.T) {
	const bs = 16
	live := []liveReq{
		{prompt: 20, maxToks: 30, gen: 5, started: true}, // holds 24: 2 blocks, reserves 50
		{prompt: 16, maxToks: 10, gen: 1, started: true}, // holds 16: 1 block, reserves 26
		{prompt: 40, maxToks: 10, gen: 3, started: true, done: true},
		{prompt: 9, maxToks: 9}, // waiting
	}
	for _, tc := range []struct {
		name      string
		st        engine.Stats
		wantOK    bool
		wantPaged int
	}{
		{"agrees", engine.Stats{Running: 2, BlocksTotal: 10, BlocksFree: 7}, true, 48},
		{"engine holds a block more", engine.Stats{Running: 2, BlocksTotal: 10, BlocksFree: 6}, false, 64},
		{"engine runs one more", engine.Stats{Running: 3, BlocksTotal: 10, BlocksFree: 7}, false, 48},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleWaste(tc.st, live, bs)
			if s.running != 2 || s.held != 40 || s.contiguous != 76 || s.derivedUsed != 3 || s.paged != tc.wantPaged {
				t.Errorf("sample %+v, want 2 running holding 40 tokens in 3 blocks, 76 contiguous slots, %d paged", s, tc.wantPaged)
			}
			if ok := s.consistent(tc.st, bs); ok != tc.wantOK {
				t.Errorf("consistent = %t, want %t", ok, tc.wantOK)
			}
		})
	}
}

func TestWaste(t *testing.T) {
	res, err := Waste(context.Background(), loadModel(t), WasteConfig{Mix: smallMix()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if !(res.PagedWaste > 0 && res.PagedWaste < res.ContiguousWaste && res.ContiguousWaste < 1) {
		t.Errorf("paged waste %v, contiguous %v: want 0 < paged < contiguous < 1", res.PagedWaste, res.ContiguousWaste)
	}
	if res.GeneratedTokens == 0 || res.StepsSeen == 0 || res.Coverage <= 0 || res.Coverage > 1.0001 {
		t.Errorf("implausible run: %+v", res)
	}
}

func TestStatic(t *testing.T) {
	res, err := Static(context.Background(), loadModel(t), StaticConfig{Mix: smallMix(), Batch: 4, Repeat: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if len(res.EngineSeconds) != 2 || len(res.StaticSeconds) != 2 || res.Engine.Seconds != slices.Min(res.EngineSeconds) {
		t.Errorf("two repetitions: engine %v (best %v), static %v", res.EngineSeconds, res.Engine.Seconds, res.StaticSeconds)
	}
	if res.OutputsDiffer != 0 {
		t.Errorf("%d requests generated other tokens under static batching than in the engine", res.OutputsDiffer)
	}
	if res.Engine.Tokens != res.Static.Tokens || res.Engine.Tokens == 0 {
		t.Errorf("engine generated %d tokens, static batching %d", res.Engine.Tokens, res.Static.Tokens)
	}
	if res.Ratio <= 0 || res.Engine.RequestsS <= 0 || res.Static.RequestsS <= 0 || res.Batch != 4 || res.Blocks != 4*8 {
		t.Errorf("implausible result: %+v", res)
	}
}

func TestTTFT(t *testing.T) {
	res, err := TTFT(context.Background(), loadModel(t), TTFTConfig{PrefixTokens: 128, Requests: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Measured != 2 || res.Cached.MedianMS <= 0 || res.Uncached.MedianMS <= 0 || res.Ratio <= 0 {
		t.Errorf("implausible result: %+v", res)
	}
	// Requests 2 and 3 find the 8 full blocks of the prefix: 256 of 3·136 prompt tokens.
	if want := 256.0 / 408; res.HitRate < want-1e-9 || res.HitRate > want+1e-9 {
		t.Errorf("prefix hit rate %v, want %v", res.HitRate, want)
	}
}

func TestSwap(t *testing.T) {
	res, err := Swap(context.Background(), loadModel(t), SwapConfig{Groups: 4, PrefixTokens: 256, PerVisit: 2, Rounds: 2, MaxTokens: 4, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.WorkingSetBlocks != 4*(16+2*2) || res.Full.Blocks != res.WorkingSetBlocks || res.Tier.Blocks != 32 {
		t.Errorf("memory: working set %d, full %d, quarter %d; want 80, 80, 32 (the engine's minimum)", res.WorkingSetBlocks, res.Full.Blocks, res.Tier.Blocks)
	}
	// Full memory finds every prefix again; the small runs without a working tier miss.
	if res.Full.PrefixHitRate <= res.Recompute.PrefixHitRate {
		t.Errorf("prefix hit rate %v with full memory, %v with a quarter", res.Full.PrefixHitRate, res.Recompute.PrefixHitRate)
	}
	if res.Recompute.SwapOutBytes != 0 || res.Full.SwapInBytes != 0 {
		t.Errorf("runs without a tier moved bytes: %+v, %+v", res.Full, res.Recompute)
	}
	// The eager tier brings prefixes back from disk.
	if res.Eager.SwapInBytes == 0 || res.Eager.PrefixHitRate <= res.Recompute.PrefixHitRate {
		t.Errorf("eager tier: %+v", res.Eager)
	}
	for _, r := range []SwapRun{res.Full, res.Tier, res.Recompute, res.Eager} {
		if r.Rate.Requests != 4*2 || r.Rate.RequestsS <= 0 {
			t.Errorf("%s: %+v", r.Name, r.Rate)
		}
	}
}
