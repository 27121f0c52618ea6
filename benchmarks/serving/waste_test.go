package serving

import (
	"context"
	"testing"

	"github.com/kvmesh/kvmesh/engine"
)

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
