package serving

import (
	"context"
	"slices"
	"testing"

	"github.com/kvmesh/kvmesh/engine"
)

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
	if want := float64(res.Static.Tokens) / float64(res.Requests); res.OutputMean != want || res.OutputMax < 1 || res.Stopped > res.Requests {
		t.Errorf("output mean %v (want %v), max %d, %d stopped of %d", res.OutputMean, want, res.OutputMax, res.Stopped, res.Requests)
	}
	if res.Ratio <= 0 || res.Engine.RequestsS <= 0 || res.Static.RequestsS <= 0 || res.Batch != 4 || res.Blocks != 4*8 {
		t.Errorf("implausible result: %+v", res)
	}
}

// TestStaticStops checks that the baseline ends a request at its first stop token: its
// tokens with stop tokens are those without, cut before the first one (sampling is a
// function of seed and position, and a sequence's logits do not depend on its batch).
func TestStaticStops(t *testing.T) {
	m := loadModel(t)
	mix := smallMix()
	mix.StopMeanMin, mix.StopMeanMax = 8, 16
	if err := mix.validate(m.Config.SeqLen); err != nil {
		t.Fatal(err)
	}
	reqs := mix.build(m.Config.Vocab)
	plain := make([]engine.Request, len(reqs))
	for i, r := range reqs {
		plain[i] = r
		plain[i].StopTokens = nil
	}
	const batch, bs = 4, 16
	blocks := batch * blocksFor(mix.maxLen(), bs)
	stopped, err := staticBatching(context.Background(), m, reqs, batch, blocks, bs, 1)
	if err != nil {
		t.Fatal(err)
	}
	full, err := staticBatching(context.Background(), m, plain, batch, blocks, bs, 1)
	if err != nil {
		t.Fatal(err)
	}
	cut := 0
	for i, r := range reqs {
		want := full.tokens[i]
		if j := slices.IndexFunc(want, func(tok int) bool { return slices.Contains(r.StopTokens, tok) }); j >= 0 {
			want = want[:j]
			cut++
		}
		if !slices.Equal(stopped.tokens[i], want) {
			t.Errorf("request %d: %v with stop tokens, want %v", i, stopped.tokens[i], want)
		}
	}
	if cut == 0 {
		t.Error("no request met one of its stop tokens: the test checks nothing")
	}
}
