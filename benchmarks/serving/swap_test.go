package serving

import (
	"context"
	"testing"
)

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
