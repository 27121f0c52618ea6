package reftest

import "testing"

func TestLoad(t *testing.T) {
	greedy, sampled := Load(t)
	if len(greedy) == 0 || len(sampled) == 0 {
		t.Fatalf("%d greedy and %d sampled cases", len(greedy), len(sampled))
	}
	for _, c := range All(t) {
		if c.PromptIDs[0] != BOS || len(c.Tokens())+len(c.PromptIDs)-1 > c.Steps {
			t.Errorf("case %q: prompt %v, %d tokens in %d steps", c.Prompt, c.PromptIDs, len(c.Tokens()), c.Steps)
		}
		if k := 3; len(c.GeneratedIDs) > k {
			if cc := c.Continued(k); len(cc.PromptIDs) != len(c.PromptIDs)+k || cc.MaxTokens() != c.MaxTokens()-k {
				t.Errorf("case %q: Continued(%d) = %d prompt ids, max tokens %d", c.Prompt, k, len(cc.PromptIDs), cc.MaxTokens())
			}
		}
	}
}
