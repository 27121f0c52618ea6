package serving

import (
	"context"
	"testing"
)

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
