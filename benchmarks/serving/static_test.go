package serving

import (
	"context"
	"slices"
	"testing"
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
	if res.Ratio <= 0 || res.Engine.RequestsS <= 0 || res.Static.RequestsS <= 0 || res.Batch != 4 || res.Blocks != 4*8 {
		t.Errorf("implausible result: %+v", res)
	}
}
