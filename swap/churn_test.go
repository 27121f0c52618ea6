package swap

import (
	"context"
	"math/rand/v2"
	"testing"
)

// Churn with uniform block sizes (one model's blocks) must not make the
// file grow without bound: freed spans fit new values exactly, so after a
// warm-up the file's used size stays within a small factor of the live data.
func TestChurnFileSizeBounded(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	r := rand.New(rand.NewPCG(3, 3))
	const keys, blk = 100, 20 << 10
	payload := testPayload(1, blk)
	var peakAfterWarmup, warm int64
	for round := range 800 {
		batch := make([]Entry, 1+r.IntN(8))
		for i := range batch {
			batch[i] = Entry{Key: testKey(r.IntN(keys)), Meta: testMeta(1), Payload: payload}
		}
		if err := s.PutBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if r.IntN(3) == 0 {
			if err := s.DeleteBatch(ctx, []Key{testKey(r.IntN(keys)), testKey(r.IntN(keys))}); err != nil {
				t.Fatal(err)
			}
		}
		fb := s.Stats().FileBytes
		if round == 300 {
			warm = fb
		}
		if round > 300 {
			peakAfterWarmup = max(peakAfterWarmup, fb)
		}
	}
	live := int64(keys) * blk
	t.Logf("live ≤ %d KiB; file used %d KiB after warm-up, peak %d KiB later", live>>10, warm>>10, peakAfterWarmup>>10)
	if peakAfterWarmup > 3*live {
		t.Errorf("file used %d bytes for ≤ %d live bytes", peakAfterWarmup, live)
	}
}

// A Put writes its own block and little else: bbolt keeps two to four keys
// in a leaf page, and with values directly in the blocks bucket every Put
// rewrote its leaf-mates too (3.2 blocks written per 1.18 MB block stored).
// Entry buckets (layout.go) keep each value alone in its leaf.
func TestWriteAmplification(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	const keys, blk, puts = 16, 256 << 10, 32
	payload := testPayload(1, blk)
	for i := range keys {
		if err := s.Put(ctx, testKey(i), testMeta(i), payload); err != nil {
			t.Fatal(err)
		}
	}
	before := s.db.Stats().TxStats
	for i := range puts {
		if err := s.Put(ctx, testKey(i*7%keys), testMeta(i), payload); err != nil {
			t.Fatal(err)
		}
	}
	after := s.db.Stats().TxStats
	amp := float64(after.GetPageAlloc()-before.GetPageAlloc()) / puts / blk
	t.Logf("%.2f blocks of pages written per %d KiB block stored", amp, blk>>10)
	if amp > 1.2 {
		t.Errorf("write amplification %.2f, want ≤ 1.2", amp)
	}
}
