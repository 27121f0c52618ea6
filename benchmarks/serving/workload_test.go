package serving

import (
	"errors"
	"slices"
	"testing"
)

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

func TestMixStopTokens(t *testing.T) {
	const vocab = 512
	mix := smallMix()
	if err := mix.validate(512); err != nil {
		t.Fatal(err)
	}
	for i, r := range mix.build(vocab) {
		if r.StopTokens != nil {
			t.Fatalf("request %d has stop tokens %v in a mix without StopMeanMax", i, r.StopTokens)
		}
	}
	mix.StopMeanMin, mix.StopMeanMax = 8, 32
	if err := mix.validate(512); err != nil {
		t.Fatal(err)
	}
	a, b := mix.build(vocab), mix.build(vocab)
	for i, r := range a {
		n := len(r.StopTokens)
		if lo, hi := (vocab-2+31)/32, (vocab-2+7)/8; n < lo || n > hi {
			t.Errorf("request %d: %d stop tokens, want %d..%d (means 8..32 over %d ids)", i, n, lo, hi, vocab-2)
		}
		if !slices.IsSorted(r.StopTokens) || len(slices.Compact(slices.Clone(r.StopTokens))) != n {
			t.Errorf("request %d: stop tokens not sorted and distinct: %v", i, r.StopTokens)
		}
		if r.StopTokens[0] < 2 || r.StopTokens[n-1] >= vocab {
			t.Errorf("request %d: stop tokens outside [2, %d): %v", i, vocab, r.StopTokens)
		}
		if !slices.Equal(r.StopTokens, b[i].StopTokens) {
			t.Fatalf("request %d: stop tokens differ between two builds of the same mix", i)
		}
	}
	for _, bad := range [][2]int{{0, 8}, {9, 8}} {
		m := smallMix()
		m.StopMeanMin, m.StopMeanMax = bad[0], bad[1]
		if err := m.validate(512); !errors.Is(err, ErrConfig) {
			t.Errorf("stop means %d..%d: got %v, want ErrConfig", bad[0], bad[1], err)
		}
	}
}
