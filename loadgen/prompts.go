package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// PromptKind names a way of building a prompt set.
type PromptKind string

const (
	// PromptsRandom: independent prompts of MinWords..MaxWords random words.
	PromptsRandom PromptKind = "random"
	// PromptsSharedPrefix: Groups groups; the prompts of a group share a common prefix of
	// PrefixWords words and end in distinct suffixes of MinWords..MaxWords words. Request
	// i belongs to group i mod Groups.
	PromptsSharedPrefix PromptKind = "shared-prefix"
)

// PromptSet describes a deterministic set of text prompts. Lengths are in words of the
// package's word list, not tokens: the server reports the token counts (Record.PromptTokens).
type PromptSet struct {
	// Kind is PromptsRandom (default) or PromptsSharedPrefix.
	Kind PromptKind `json:"kind"`
	// MinWords and MaxWords bound the length of a random prompt, or of the suffix of a
	// shared-prefix prompt, in words (inclusive). Defaults 8 and 64 for random prompts,
	// 4 and 16 for suffixes.
	MinWords int `json:"min_words"`
	MaxWords int `json:"max_words"`
	// Groups is the number of shared prefixes. Default 4.
	Groups int `json:"groups,omitempty"`
	// PrefixWords is the length of a shared prefix in words. Default 96.
	PrefixWords int `json:"prefix_words,omitempty"`
}

// DefaultPromptSet is random prompts of 8 to 64 words.
func DefaultPromptSet() PromptSet {
	var p PromptSet
	if err := p.fill(); err != nil {
		panic(err) // fill of the zero prompt set cannot fail
	}
	return p
}

// Prompt is one prompt of a set.
type Prompt struct {
	Text string
	// Group is the shared-prefix group, or -1 for a random prompt.
	Group int
	// Words is the prompt's length in words; PrefixWords of them are the group's prefix.
	Words, PrefixWords int
}

func (p *PromptSet) fill() error {
	if p.Kind == "" {
		p.Kind = PromptsRandom
	}
	if p.MinWords == 0 && p.MaxWords == 0 {
		p.MinWords, p.MaxWords = 8, 64
		if p.Kind == PromptsSharedPrefix {
			p.MinWords, p.MaxWords = 4, 16
		}
	}
	if p.Kind == PromptsSharedPrefix {
		if p.Groups == 0 {
			p.Groups = 4
		}
		if p.PrefixWords == 0 {
			p.PrefixWords = 96
		}
	}
	return nil
}

func (p *PromptSet) validate() error {
	if err := p.fill(); err != nil {
		return err
	}
	switch {
	case p.Kind != PromptsRandom && p.Kind != PromptsSharedPrefix:
		return fmt.Errorf("%w: prompt kind %q: want %q or %q", ErrConfig, p.Kind, PromptsRandom, PromptsSharedPrefix)
	case p.MinWords < 1 || p.MaxWords < p.MinWords:
		return fmt.Errorf("%w: prompt words %d..%d: want 1 ≤ min ≤ max", ErrConfig, p.MinWords, p.MaxWords)
	case p.Kind == PromptsSharedPrefix && (p.Groups < 1 || p.PrefixWords < 1):
		return fmt.Errorf("%w: shared prefix of %d groups × %d words: want both ≥ 1", ErrConfig, p.Groups, p.PrefixWords)
	}
	return nil
}

// Generate returns n prompts of the set, the same for the same set, n and seed. It fills
// defaults first and returns ErrConfig for a set out of range.
func (p PromptSet) Generate(n int, seed int64) ([]Prompt, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("%w: %d prompts", ErrConfig, n)
	}
	// Separate streams for prefixes and per-prompt text, so that the prefixes of a
	// seed do not depend on n.
	prefixRNG := rand.New(rand.NewPCG(uint64(seed), 0x70726566697865)) // "prefixe"
	rng := rand.New(rand.NewPCG(uint64(seed), 0x70726f6d707473))       // "prompts"
	var prefixes []string
	if p.Kind == PromptsSharedPrefix {
		prefixes = make([]string, p.Groups)
		for g := range prefixes {
			prefixes[g] = sentence(prefixRNG, p.PrefixWords)
		}
	}
	out := make([]Prompt, n)
	seen := make(map[string]bool, n)
	for i := range out {
		var text string
		words := 0
		// Redraw a suffix that repeats an earlier prompt, a bounded number of times: a
		// tiny word range may not have n distinct prompts.
		for try := 0; try < 16; try++ {
			words = p.MinWords + rng.IntN(p.MaxWords-p.MinWords+1)
			text = sentence(rng, words)
			if !seen[text] {
				break
			}
		}
		seen[text] = true
		pr := Prompt{Text: text, Group: -1, Words: words}
		if p.Kind == PromptsSharedPrefix {
			g := i % p.Groups
			pr = Prompt{Text: prefixes[g] + " " + text, Group: g, Words: p.PrefixWords + words, PrefixWords: p.PrefixWords}
		}
		out[i] = pr
	}
	return out, nil
}

// sentence returns n random words, capitalised and full-stopped into sentences of 4 to 11
// words, like the text the story models were trained on.
func sentence(rng *rand.Rand, n int) string {
	var b strings.Builder
	left := 0 // words left in the current sentence
	for i := range n {
		w := words[rng.IntN(len(words))]
		if i > 0 {
			b.WriteByte(' ')
		}
		if left == 0 {
			left = 4 + rng.IntN(8)
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
		left--
		if left == 0 || i == n-1 {
			b.WriteByte('.')
		}
	}
	return b.String()
}
