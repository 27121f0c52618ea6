package blocks

import (
	"testing"
)

// smallShape is a shape small enough to read every value back in tests.
var smallShape = Shape{Layers: 2, KVHeads: 2, HeadSize: 8, BlockSize: 4}

// newTestCache builds a cache and checks its invariants when the test ends.
func newTestCache(t testing.TB, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := c.Check(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return c
}

func testConfig(numBlocks int, d DType) Config {
	return Config{Shape: smallShape, DType: d, NumBlocks: numBlocks, RecordEvents: true, Verify: true}
}

// randVec returns n values in [-scale, scale).
func randVec(rng interface{ Float32() float32 }, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (2*rng.Float32() - 1) * scale
	}
	return v
}

var allDTypes = []DType{FP32, FP16, Int8, Int4}
