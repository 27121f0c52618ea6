package reftest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// BOS is the token that starts a story and, generated, ends it.
const BOS = 1

// Case is one generation of run.c on the shipped stories260K model.
type Case struct {
	Prompt       string  `json:"prompt"`
	Temperature  float32 `json:"temperature"`
	TopP         float32 `json:"top_p"`
	Seed         uint64  `json:"seed"`
	Steps        int     `json:"steps"`         // positions run, the prompt's included
	PromptIDs    []int   `json:"prompt_ids"`    // BOS first
	GeneratedIDs []int   `json:"generated_ids"` // every sampled token, a final BOS included
	Stdout       string  `json:"stdout"`        // what run.c printed, without the final newline
}

// MaxTokens is the most tokens the generation could sample: one per position from the
// prompt's last on.
func (c Case) MaxTokens() int { return c.Steps - len(c.PromptIDs) + 1 }

// EndsAtBOS reports whether the generation stopped by sampling BOS.
func (c Case) EndsAtBOS() bool {
	n := len(c.GeneratedIDs)
	return n > 0 && c.GeneratedIDs[n-1] == BOS
}

// Tokens is the generated tokens a server emits: without the BOS that ends a story.
func (c Case) Tokens() []int {
	if c.EndsAtBOS() {
		return c.GeneratedIDs[:len(c.GeneratedIDs)-1]
	}
	return c.GeneratedIDs
}

// Text is the completion text of the case: what run.c printed after the prompt.
func (c Case) Text() string {
	if c.Prompt == "" {
		return c.Stdout
	}
	return strings.TrimPrefix(c.Stdout, c.Prompt)
}

// Continued is the case with its first k generated tokens moved into the prompt: a longer
// prompt whose continuation the reference still gives.
func (c Case) Continued(k int) Case {
	c.PromptIDs = append(append([]int(nil), c.PromptIDs...), c.GeneratedIDs[:k]...)
	c.GeneratedIDs = c.GeneratedIDs[k:]
	return c
}

// Path is the path of a file of the repository, e.g. Path("models/stories260K.bin").
func Path(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", rel)
}

// Model and Tokenizer are the shipped stories260K checkpoint and its tokenizer.
var (
	Model     = Path("models/stories260K.bin")
	Tokenizer = Path("models/tok512.bin")
)

// Load returns the greedy and the sampled reference cases.
func Load(t testing.TB) (greedy, sampled []Case) {
	t.Helper()
	data, err := os.ReadFile(Path("testdata/reference/stories260K_greedy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ Greedy, Sampled []Case }
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	return ref.Greedy, ref.Sampled
}

// All returns the greedy cases, then the sampled ones.
func All(t testing.TB) []Case {
	t.Helper()
	greedy, sampled := Load(t)
	return append(greedy, sampled...)
}
