package serving

import (
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
