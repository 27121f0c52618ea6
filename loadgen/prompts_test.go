package loadgen

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// update makes golden-file tests rewrite their files in testdata instead of comparing:
// go test ./loadgen -run NAME -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestWords(t *testing.T) {
	if len(words) != 200 {
		t.Fatalf("%d words, want 200", len(words))
	}
	seen := map[string]bool{}
	for _, w := range words {
		if seen[w] || w == "" || strings.ToLower(w) != w || strings.ContainsAny(w, " .") {
			t.Fatalf("word %q repeated or malformed", w)
		}
		seen[w] = true
	}
}

func TestPromptsDeterministic(t *testing.T) {
	for _, set := range []PromptSet{{}, {Kind: PromptsSharedPrefix}, {MinWords: 1, MaxWords: 1}} {
		a, err := set.Generate(50, 3)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := set.Generate(50, 3)
		c, _ := set.Generate(50, 4)
		if !slices.Equal(a, b) {
			t.Fatalf("%+v: same seed, different prompts", set)
		}
		if slices.Equal(a, c) {
			t.Fatalf("%+v: seeds 3 and 4 give the same prompts", set)
		}
		// A shorter run is a prefix of a longer one only for the prompts' text streams;
		// but the shared prefixes must not depend on the count.
		d, _ := set.Generate(5, 3)
		if set.Kind == PromptsSharedPrefix && !slices.Equal(d, a[:5]) {
			t.Fatalf("%+v: the first 5 prompts depend on the count", set)
		}
	}
}

func TestPromptsRandom(t *testing.T) {
	set := PromptSet{MinWords: 3, MaxWords: 9}
	ps, err := set.Generate(300, 1)
	if err != nil {
		t.Fatal(err)
	}
	lengths := map[int]bool{}
	texts := map[string]bool{}
	for i, p := range ps {
		n := len(strings.Fields(p.Text))
		if n != p.Words || n < 3 || n > 9 || p.Group != -1 || p.PrefixWords != 0 {
			t.Fatalf("prompt %d %q: %d words, %+v", i, p.Text, n, p)
		}
		if !strings.HasSuffix(p.Text, ".") || p.Text[0] < 'A' || p.Text[0] > 'Z' {
			t.Fatalf("prompt %d %q: not a sentence", i, p.Text)
		}
		lengths[n] = true
		texts[p.Text] = true
	}
	if len(lengths) != 7 {
		t.Errorf("lengths seen %v, want all of 3..9", lengths)
	}
	if len(texts) != len(ps) {
		t.Errorf("%d distinct prompts of %d", len(texts), len(ps))
	}
}

func TestPromptsSharedPrefix(t *testing.T) {
	set := PromptSet{Kind: PromptsSharedPrefix, Groups: 3, PrefixWords: 40, MinWords: 2, MaxWords: 6}
	ps, err := set.Generate(30, 9)
	if err != nil {
		t.Fatal(err)
	}
	prefix := map[int]string{}
	suffixes := map[string]bool{}
	for i, p := range ps {
		if p.Group != i%3 || p.PrefixWords != 40 {
			t.Fatalf("prompt %d: %+v", i, p)
		}
		w := strings.Fields(p.Text)
		if len(w) != p.Words || len(w) < 42 || len(w) > 46 {
			t.Fatalf("prompt %d: %d words (%d), want 40 + 2..6", i, len(w), p.Words)
		}
		pre, suf := strings.Join(w[:40], " "), strings.Join(w[40:], " ")
		if old, ok := prefix[p.Group]; ok && old != pre {
			t.Fatalf("prompt %d: group %d prefix differs:\n%s\n%s", i, p.Group, old, pre)
		}
		prefix[p.Group] = pre
		if suffixes[suf] {
			t.Fatalf("prompt %d: suffix %q repeated", i, suf)
		}
		suffixes[suf] = true
	}
	if prefix[0] == prefix[1] || prefix[1] == prefix[2] {
		t.Fatal("groups share a prefix")
	}
}

// TestPromptsGolden pins the prompts of fixed seeds, so that a change to the word list or
// the generator (which changes every benchmark's input) is seen.
func TestPromptsGolden(t *testing.T) {
	var b strings.Builder
	for _, set := range []PromptSet{{}, {Kind: PromptsSharedPrefix, Groups: 2, PrefixWords: 12}} {
		ps, err := set.Generate(4, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			fmt.Fprintf(&b, "%s group=%d words=%d: %s\n", cmp.Or(set.Kind, PromptsRandom), p.Group, p.Words, p.Text)
		}
	}
	const path = "testdata/prompts_seed1.golden"
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Fatalf("prompts changed:\n%s\nwant:\n%s", b.String(), want)
	}
}
