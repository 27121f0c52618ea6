package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

const (
	llamaPath  = "../../models/tokenizer.bin"
	storiesTok = "../../models/tok512.bin"
)

func load(t testing.TB, path string, vocab int) *Tokenizer {
	t.Helper()
	tok, err := Load(path, vocab)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// naiveEncode is run.c's encode transcribed: a byte buffer grown per code point, then one
// full scan of all pairs per merge. It is the oracle for Encode.
func naiveEncode(t *Tokenizer, text string, bos, eos bool) []int {
	var tokens []int
	if bos {
		tokens = append(tokens, BOS)
	}
	if i := strings.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	if text != "" {
		if id, ok := t.ids[" "]; ok {
			tokens = append(tokens, id)
		}
	}
	var buf []byte
	for c := 0; c < len(text); c++ {
		if text[c]&0xC0 != 0x80 {
			buf = buf[:0]
		}
		buf = append(buf, text[c])
		if c+1 < len(text) && text[c+1]&0xC0 == 0x80 && len(buf) < 4 {
			continue
		}
		if id, ok := t.ids[string(buf)]; ok {
			tokens = append(tokens, id)
		} else {
			for _, b := range buf {
				tokens = append(tokens, int(b)+3)
			}
		}
		buf = buf[:0]
	}
	for {
		best, bestID, bestIdx := float32(-1e10), -1, -1
		for i := 0; i+1 < len(tokens); i++ {
			id, ok := t.ids[t.pieces[tokens[i]]+t.pieces[tokens[i+1]]]
			if ok && t.scores[id] > best {
				best, bestID, bestIdx = t.scores[id], id, i
			}
		}
		if bestIdx == -1 {
			break
		}
		tokens[bestIdx] = bestID
		tokens = append(tokens[:bestIdx+1], tokens[bestIdx+2:]...)
	}
	if eos {
		tokens = append(tokens, EOS)
	}
	return tokens
}

func TestLlamaCases(t *testing.T) {
	tok := load(t, llamaPath, 32000)
	var ref struct {
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids_with_bos"`
		} `json:"cases"`
	}
	readJSON(t, "../../testdata/reference/llama2_tokenizer_cases.json", &ref)
	if len(ref.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range ref.Cases {
		if got := tok.Encode(c.Text, true, false); !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
		}
		if got := naiveEncode(tok, c.Text, true, false); !slices.Equal(got, c.IDs) {
			t.Errorf("naiveEncode(%q) = %v, want %v", c.Text, got, c.IDs)
		}
	}
}

// storyCase is one run of the reference generator.
type storyCase struct {
	Prompt    string `json:"prompt"`
	PromptIDs []int  `json:"prompt_ids"`
	Generated []int  `json:"generated_ids"`
	Stdout    string `json:"stdout"`
}

func stories(t *testing.T) (greedy, sampled []storyCase) {
	var ref struct{ Greedy, Sampled []storyCase }
	readJSON(t, "../../testdata/reference/stories260K_greedy.json", &ref)
	if len(ref.Greedy) == 0 || len(ref.Sampled) == 0 {
		t.Fatal("no cases")
	}
	return ref.Greedy, ref.Sampled
}

func TestStoriesPrompts(t *testing.T) {
	tok := load(t, storiesTok, 512)
	greedy, sampled := stories(t)
	for _, c := range append(greedy, sampled...) {
		if got := tok.Encode(c.Prompt, true, false); !slices.Equal(got, c.PromptIDs) {
			t.Errorf("Encode(%q) = %v, want %v", c.Prompt, got, c.PromptIDs)
		}
	}
}

// print renders a token sequence as run.c's generate prints it: each next token's
// Decode(prev, next) if Printable, stopping at a BOS, then a newline.
func print(tok *Tokenizer, ids []int) string {
	var b strings.Builder
	for i := 1; i < len(ids) && ids[i] != BOS; i++ {
		if p := tok.Decode(ids[i-1], ids[i]); Printable(p) {
			b.WriteString(p)
		}
	}
	b.WriteString("\n")
	return b.String()
}

func TestStoriesStdout(t *testing.T) {
	tok := load(t, storiesTok, 512)
	greedy, sampled := stories(t)
	for _, c := range append(greedy, sampled...) {
		// The reference keeps run.c's output without its final newline.
		got := print(tok, append(append([]int(nil), c.PromptIDs...), c.Generated...))
		if got != c.Stdout+"\n" {
			t.Errorf("prompt %q: printed\n%q\nwant\n%q", c.Prompt, got, c.Stdout)
		}
	}
}

func TestDecode(t *testing.T) {
	tok := load(t, llamaPath, 32000)
	nl := tok.Encode("\n", false, false)[1] // the dummy prefix, then the newline
	for _, c := range []struct {
		prev, tok int
		want      string
		printable bool
	}{
		{BOS, 9038, "Once", true},    // " Once" loses its space after BOS
		{9038, 2501, " upon", true},  // but not elsewhere
		{0, nl, "\n", true},          // <0x0A> is the raw byte
		{0, 3, "\x00", false},        // <0x00>
		{0, 3 + 0x7f, "\x7f", false}, // DEL is not printable
		{0, 3 + 0xE6, "\xE6", false}, // a lone UTF-8 lead byte
		{BOS, 29871, "", false},      // " " after BOS is empty
		{0, 30325, "日", true},        // a code point piece
		{0, 2, "\n</s>\n", true},     // special pieces print as they are
	} {
		got := tok.Decode(c.prev, c.tok)
		if got != c.want || Printable(got) != c.printable {
			t.Errorf("Decode(%d, %d) = %q printable %t, want %q %t", c.prev, c.tok, got, Printable(got), c.want, c.printable)
		}
	}
	if tok.Piece(nl) != "<0x0A>" || tok.Vocab() != 32000 || tok.MaxTokenLength() != 27 {
		t.Errorf("Piece(%d) = %q, Vocab %d, MaxTokenLength %d", nl, tok.Piece(nl), tok.Vocab(), tok.MaxTokenLength())
	}
}

func TestScanByte(t *testing.T) {
	for _, c := range []struct {
		piece string
		b     byte
		ok    bool
	}{
		{"<0x0A>", 0x0A, true}, {"<0xff>", 0xff, true}, {"<0xA>", 0x0A, true}, {"<0x41zz", 0x41, true},
		{"<0x 7>", 7, true}, {"<0x-1>", 0xff, true}, {"<0x+F>", 0x0F, true}, {"<0x123>", 0x12, true},
		{"<0x>", 0, false}, {"<0xg1>", 0, false}, {"<0x", 0, false}, {"<1x41>", 0, false}, {"hello", 0, false},
	} {
		if b, ok := scanByte(c.piece); b != c.b || ok != c.ok {
			t.Errorf("scanByte(%q) = %#x %t, want %#x %t", c.piece, b, ok, c.b, c.ok)
		}
	}
}

// rank must order merges as run.c's comparisons do: higher score, then leftmost, with -0
// and +0 equal.
func TestRank(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	scores := []float32{0, negZero, -1, -1e9, 3.5, -0.5, float32(math.Inf(-1)), 1e-40, -1e-40}
	for _, a := range scores {
		for _, b := range scores {
			for _, pos := range [][2]int32{{0, 1}, {1, 0}, {5, 5}} {
				want := a > b || (a == b && pos[0] < pos[1])
				if got := rank(a, pos[0]) < rank(b, pos[1]); got != want {
					t.Errorf("rank(%v, %d) < rank(%v, %d) = %t, want %t", a, pos[0], b, pos[1], got, want)
				}
			}
		}
	}
}

// randomText mixes ASCII words, multi-byte code points, stray bytes and whitespace.
func randomText(r *rand.Rand, n int) string {
	parts := []string{"the", " ", "  ", "cat", "é", "日本", "🚀", "\n", "\t", "a", "aa", "\xff", "\x80", "\xe6\x97", "Once", "upon", ".", "<0x41>", "1234"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	return b.String()
}

// TestEncodeMatchesNaive checks the heap encoder against run.c's algorithm on random text.
func TestEncodeMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		path  string
		vocab int
	}{{llamaPath, 32000}, {storiesTok, 512}} {
		tok := load(t, tc.path, tc.vocab)
		for i := range 300 {
			text := randomText(r, r.IntN(200))
			bos, eos := i%2 == 0, i%3 == 0
			if got, want := tok.Encode(text, bos, eos), naiveEncode(tok, text, bos, eos); !slices.Equal(got, want) {
				t.Fatalf("%s: Encode(%q) = %v, run.c's algorithm gives %v", tc.path, text, got, want)
			}
			checkEncode(t, tok, text)
		}
	}
}

// entryBytes encodes tokenizer file entries.
func fileBytes(maxLen int32, pieces []string, scores []float32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	for i, p := range pieces {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(scores[i]))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// smallVocab is a minimal valid vocabulary: the specials, the byte tokens and a few
// merges, including a duplicate piece and one with a NUL.
func smallVocab() (pieces []string, scores []float32) {
	pieces = []string{"<unk>", "\n<s>\n", "\n</s>\n"}
	for b := range 256 {
		pieces = append(pieces, "<0x"+strings.ToUpper(string("0123456789abcdef"[b>>4]))+strings.ToUpper(string("0123456789abcdef"[b&15]))+">")
	}
	pieces = append(pieces, " ", "a", "b", "ab", " a", " ab", "ab", "c\x00d", "cc")
	scores = make([]float32, len(pieces))
	for i := 259; i < len(pieces); i++ {
		scores[i] = -float32(i - 259)
	}
	return pieces, scores
}

func TestSmallVocab(t *testing.T) {
	pieces, scores := smallVocab()
	tok, err := Parse(fileBytes(5, pieces, scores), len(pieces))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Piece(266); got != "c" {
		t.Errorf("a piece is cut at its NUL: got %q", got)
	}
	// "ab" is ids 262 and 265: the lower wins; "c" (266, from "c\x00d") and "cc" merge.
	for _, c := range []struct {
		text string
		want []int
	}{
		{"", []int{BOS, EOS}},
		{"ab", []int{BOS, 264, EOS}},
		{"b ab", []int{BOS, 259, 261, 264, EOS}},
		{"cc", []int{BOS, 259, 267, EOS}},
		{"ab\x00ab", []int{BOS, 264, EOS}}, // the text ends at its NUL
		{"\xff", []int{BOS, 259, 3 + 0xff, EOS}},
	} {
		if got := tok.Encode(c.text, true, true); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	pieces, scores := smallVocab()
	valid := fileBytes(5, pieces, scores)
	n := len(pieces)
	negative := fileBytes(5, pieces, scores)
	binary.LittleEndian.PutUint32(negative[4+4:], uint32(0xffffffff)) // first entry's length
	for _, c := range []struct {
		name  string
		data  []byte
		vocab int
		want  error
		say   string
	}{
		{"empty", nil, n, ErrTruncated, ""},
		{"fewer tokens", valid, n + 1, ErrVocab, "holds 268 tokens, the model's vocabulary has 269"},
		{"more tokens", valid, n - 1, ErrVocab, "holds 268 tokens, the model's vocabulary has 267"},
		{"cut inside an entry", valid[:len(valid)-1], n, ErrTruncated, ""},
		{"cut inside an entry header", valid[:len(valid)-8], n, ErrTruncated, ""},
		{"trailing garbage", append(append([]byte(nil), valid...), 1, 2, 3), n, ErrTruncated, ""},
		{"negative length", negative, n, ErrFormat, ""},
		{"vocabulary without byte fallback", valid, 100, ErrVocab, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.data, c.vocab)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.say) {
				t.Errorf("Parse = %v, want %v saying %q", err, c.want, c.say)
			}
		})
	}
	if got, err := Count(valid); got != n || err != nil {
		t.Errorf("Count = %d, %v; want %d", got, err, n)
	}
	if _, err := Load("does-not-exist.bin", 512); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
}

// roundTrips says whether decoding text's tokens must give text back: when text has no
// NUL (run.c stops there) and no '<' (the text could then spell a byte token such as
// "<0x41>" or the BOS piece, which decode differently).
func roundTrips(text string) bool { return !strings.ContainsAny(text, "\x00<") }

func decodeAll(tok *Tokenizer, ids []int) string {
	var b strings.Builder
	for i := 1; i < len(ids); i++ {
		b.WriteString(tok.Decode(ids[i-1], ids[i]))
	}
	return b.String()
}

func FuzzEncode(f *testing.F) {
	llama, stories := load(f, llamaPath, 32000), load(f, storiesTok, 512)
	for _, s := range []string{"", "Once upon a time", "  x", "naïve 日本語 🚀", "\xff\xfe\x80", "a\x00b", "<0x41>", "\n<s>\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, tok := range []*Tokenizer{llama, stories} {
			checkEncode(t, tok, text)
		}
	})
}

// checkEncode checks Encode against run.c's algorithm and the round trip of the package doc.
func checkEncode(t *testing.T, tok *Tokenizer, text string) {
	t.Helper()
	ids := tok.Encode(text, true, false)
	if len(text) <= 512 {
		if want := naiveEncode(tok, text, true, false); !slices.Equal(ids, want) {
			t.Fatalf("Encode(%q) = %v, run.c's algorithm gives %v", text, ids, want)
		}
	}
	for _, id := range ids {
		if id < 0 || id >= tok.Vocab() {
			t.Fatalf("Encode(%q) gave id %d", text, id)
		}
	}
	if roundTrips(text) {
		if got := decodeAll(tok, ids); got != text {
			t.Fatalf("Decode(Encode(%q)) = %q", text, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	pieces, scores := smallVocab()
	f.Add(fileBytes(5, pieces, scores), len(pieces))
	f.Add(fileBytes(5, pieces, scores)[:100], len(pieces))
	if data, err := os.ReadFile(storiesTok); err == nil {
		f.Add(data, 512)
	}
	f.Fuzz(func(t *testing.T, data []byte, vocab int) {
		if vocab > 1<<20 {
			return
		}
		tok, err := Parse(data, vocab)
		if err != nil {
			return
		}
		if tok.Vocab() != vocab {
			t.Fatalf("Vocab() = %d, asked %d", tok.Vocab(), vocab)
		}
		for _, text := range []string{"", "hello world", "\xff日"} {
			ids := tok.Encode(text, true, true)
			if want := naiveEncode(tok, text, true, true); !slices.Equal(ids, want) {
				t.Fatalf("Encode(%q) = %v, run.c's algorithm gives %v", text, ids, want)
			}
			for i := 1; i < len(ids); i++ {
				Printable(tok.Decode(ids[i-1], ids[i]))
			}
		}
	})
}

// BenchmarkEncode encodes about 4k tokens of prose.
func BenchmarkEncode(b *testing.B) {
	tok := load(b, llamaPath, 32000)
	text := strings.Repeat("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ", 180)
	b.SetBytes(int64(len(text)))
	var n int
	for b.Loop() {
		n = len(tok.Encode(text, true, false))
	}
	b.ReportMetric(float64(n), "tokens")
}
