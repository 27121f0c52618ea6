package ckpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/kvmesh/kvmesh/model/tensor"
)

const realModel = "../../models/stories260K.bin"

// tiny is a small grouped-query shape every format can hold (group size 4 divides 16 and
// 24).
var tiny = Config{Dim: 16, HiddenDim: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 11, SeqLen: 8}

func withFormat(c Config, version int, shared bool) Config {
	c.Version, c.SharedClassifier = version, shared
	if version == 2 {
		c.GroupSize = 4
	}
	return c
}

// fill gives every tensor distinct deterministic values in about [-1, 1).
func fill(name string, dst []float32) {
	h := fnv.New64a()
	h.Write([]byte(name))
	state := h.Sum64()
	for i := range dst {
		dst[i] = float32(int64(splitmix64(&state)>>40)-1<<23) / (1 << 23)
	}
}

// encode writes cfg's checkpoint with fill.
func encode(t testing.TB, cfg Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, cfg, fill); err != nil {
		t.Fatalf("Write(%s): %v", cfg, err)
	}
	return buf.Bytes()
}

// tensors names every tensor of ck as Write's fill sees it, as fp32 or Q8 matrices.
func tensors(ck *Checkpoint) map[string]tensor.Matrix {
	c := ck.Config
	vec := func(v []float32) tensor.Matrix { return tensor.Matrix{Rows: 1, Cols: len(v), F32: v} }
	m := map[string]tensor.Matrix{
		"embedding":  {Rows: c.Vocab, Cols: c.Dim, F32: ck.Embedding},
		"final_norm": vec(ck.FinalNorm),
	}
	if !c.SharedClassifier {
		m["classifier"] = ck.Classifier
	}
	for l, L := range ck.Layers {
		p := fmt.Sprintf("layers.%d.", l)
		m[p+"attn_norm"], m[p+"ffn_norm"] = vec(L.AttnNorm), vec(L.FFNNorm)
		m[p+"wq"], m[p+"wk"], m[p+"wv"], m[p+"wo"] = L.Wq, L.Wk, L.Wv, L.Wo
		m[p+"w1"], m[p+"w2"], m[p+"w3"] = L.W1, L.W2, L.W3
	}
	return m
}

// checkShapes verifies every tensor has the shape and storage its config says.
func checkShapes(t testing.TB, ck *Checkpoint) {
	t.Helper()
	c := ck.Config
	if len(ck.Layers) != c.Layers {
		t.Fatalf("%d layers, config says %d", len(ck.Layers), c.Layers)
	}
	want := map[string][2]int{"embedding": {c.Vocab, c.Dim}, "final_norm": {1, c.Dim}, "classifier": {c.Vocab, c.Dim}}
	for l := range c.Layers {
		p := fmt.Sprintf("layers.%d.", l)
		for n, s := range map[string][2]int{"attn_norm": {1, c.Dim}, "ffn_norm": {1, c.Dim}, "wq": {c.Dim, c.Dim},
			"wk": {c.KVDim(), c.Dim}, "wv": {c.KVDim(), c.Dim}, "wo": {c.Dim, c.Dim},
			"w1": {c.HiddenDim, c.Dim}, "w2": {c.Dim, c.HiddenDim}, "w3": {c.HiddenDim, c.Dim}} {
			want[p+n] = s
		}
	}
	got := tensors(ck)
	got["classifier"] = ck.Classifier
	for name, s := range want {
		m := got[name]
		n := s[0] * s[1]
		quantized := c.Version == 2 && name != "embedding" && s[0] > 1
		switch {
		case m.Rows != s[0] || m.Cols != s[1]:
			t.Errorf("%s: shape (%d, %d), want (%d, %d)", name, m.Rows, m.Cols, s[0], s[1])
		case quantized && (len(m.Q8) != n || len(m.Scales) != n/c.GroupSize || m.GroupSize != c.GroupSize || m.F32 != nil):
			t.Errorf("%s: Q8 %d values, %d scales, group %d; want %d, %d, %d", name, len(m.Q8), len(m.Scales), m.GroupSize, n, n/c.GroupSize, c.GroupSize)
		case !quantized && (len(m.F32) != n || m.Q8 != nil):
			t.Errorf("%s: %d fp32 values, want %d", name, len(m.F32), n)
		}
	}
}

func TestRealCheckpoint(t *testing.T) {
	ck, err := Open(realModel)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	want := Config{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512, SeqLen: 512, SharedClassifier: true}
	if ck.Config != want {
		t.Fatalf("config %s, want %s", ck.Config, want)
	}
	checkShapes(t, ck)
	if &ck.Classifier.F32[0] != &ck.Embedding[0] {
		t.Error("shared classifier does not view the embedding")
	}
	// A trained model's norm weights are near 1 and its matrices small: the views are at
	// the right offsets.
	if n := ck.FinalNorm[0]; n < 0.1 || n > 10 {
		t.Errorf("final norm[0] = %v, not a norm weight", n)
	}
	if w := ck.Layers[4].W2.F32[171]; math.Abs(float64(w)) > 1 {
		t.Errorf("last layer w2[0][171] = %v, not a weight", w)
	}
	if got, want := ck.Config.Params(), int64(260*1024); got < want*9/10 || got > want*11/10 {
		t.Errorf("Params() = %d, want about 260K", got)
	}
	data, err := os.ReadFile(realModel)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if id := ck.Identity(); id != parsed.Identity() || len(id) != 64 {
		t.Errorf("identity %q of the mapped file, %q of its bytes", id, parsed.Identity())
	}
}

func TestRoundTrip(t *testing.T) {
	mqa := tiny
	mqa.KVHeads = 1
	for _, shape := range []Config{tiny, mqa} {
		for _, version := range []int{0, 1, 2} {
			for _, shared := range []bool{true, false} {
				cfg := withFormat(shape, version, shared)
				t.Run(cfg.String(), func(t *testing.T) {
					data := encode(t, cfg)
					if size, _ := cfg.FileSize(); int64(len(data)) != size {
						t.Fatalf("wrote %d bytes, FileSize says %d", len(data), size)
					}
					ck, err := Parse(data)
					if err != nil {
						t.Fatal(err)
					}
					if ck.Config != cfg {
						t.Fatalf("config %s, wrote %s", ck.Config, cfg)
					}
					checkShapes(t, ck)
					for name, m := range tensors(ck) {
						want := make([]float32, m.Rows*m.Cols)
						fill(name, want)
						checkValues(t, name, m, want, cfg.GroupSize)
					}
				})
			}
		}
	}
}

// checkValues compares m with the values written: equal for fp32, within half a
// quantization step for Q8 with every group's largest value at ±127. A version 2 embedding
// (dequantized, so fp32) is within half the step of its group in the file.
func checkValues(t *testing.T, name string, m tensor.Matrix, want []float32, groupSize int) {
	t.Helper()
	if m.GroupSize == 0 && groupSize > 0 && name == "embedding" {
		for g := 0; g < len(want); g += groupSize {
			var top float64
			for _, w := range want[g : g+groupSize] {
				top = max(top, math.Abs(float64(w)))
			}
			for i := g; i < g+groupSize; i++ {
				if d := math.Abs(float64(m.F32[i] - want[i])); d > top/127/2*1.0001 {
					t.Fatalf("%s[%d] = %v, wrote %v (group max %v)", name, i, m.F32[i], want[i], top)
				}
			}
		}
		return
	}
	if m.GroupSize == 0 {
		for i, w := range want {
			if m.F32[i] != w {
				t.Fatalf("%s[%d] = %v, wrote %v", name, i, m.F32[i], w)
			}
		}
		return
	}
	for g, s := range m.Scales {
		top := 0
		for i := g * m.GroupSize; i < (g+1)*m.GroupSize; i++ {
			q := m.Q8[i]
			top = max(top, int(q), -int(q))
			if d := math.Abs(float64(float32(q)*s - want[i])); d > float64(s)/2*1.0001 {
				t.Fatalf("%s[%d] = %d × %v, wrote %v", name, i, q, s, want[i])
			}
		}
		if top != 127 {
			t.Fatalf("%s group %d: largest |q| is %d, want 127", name, g, top)
		}
	}
}

// TestRealModelFormats rewrites the real model in every version: version 1 holds the very
// same fp32 values, legacy is byte-identical outside the unused RoPE tables, and version 2
// quantizes within half a step.
func TestRealModelFormats(t *testing.T) {
	orig, err := os.ReadFile(realModel)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	named := tensors(ck)
	from := func(name string, dst []float32) {
		m, ok := named[name]
		if !ok {
			t.Fatalf("writer asked for tensor %q", name)
		}
		copy(dst, m.F32)
	}
	for _, version := range []int{0, 1, 2} {
		cfg := ck.Config
		cfg.Version = version
		var buf bytes.Buffer
		if err := Write(&buf, cfg, from); err != nil {
			t.Fatal(err)
		}
		back, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if version == 2 && back.Config.GroupSize != 4 {
			t.Errorf("default group size %d for dim 64, hidden 172; want 4", back.Config.GroupSize)
		}
		for name, m := range tensors(back) {
			t.Run(fmt.Sprintf("v%d/%s", version, name), func(t *testing.T) {
				checkValues(t, name, m, named[name].F32, back.Config.GroupSize)
			})
		}
		if version == 0 {
			c := ck.Config
			ropeStart := int(c.fileSize()) - 2*4*c.SeqLen*c.HeadSize()/2
			if !bytes.Equal(buf.Bytes()[:ropeStart], orig[:ropeStart]) {
				t.Error("legacy rewrite differs from the original before the RoPE tables")
			}
		}
	}
}

// The identity of a rewrite is that of the original file when the bytes are equal.
func TestIdentity(t *testing.T) {
	small := encode(t, withFormat(tiny, 1, true))
	a, _ := Parse(small)
	b, _ := Parse(bytes.Clone(small))
	if a.Identity() != b.Identity() {
		t.Error("equal bytes, different identities")
	}
	changed := bytes.Clone(small)
	changed[len(changed)-1] ^= 1
	if c, _ := Parse(changed); c.Identity() == a.Identity() {
		t.Error("a changed weight kept the identity of a small file")
	}
	// Large files are sampled: the first and last tensor bytes are always in a window.
	big := Config{Dim: 64, HiddenDim: 128, Layers: 8, Heads: 4, KVHeads: 4, Vocab: 256, SeqLen: 16, SharedClassifier: true, Version: 1}
	var buf bytes.Buffer
	if err := WriteSynthetic(&buf, big, 1); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if len(data) <= identityWhole {
		t.Fatalf("%d bytes is not large enough to be sampled", len(data))
	}
	base, _ := Parse(data)
	for _, at := range []int{ak42HeaderSize, len(data) - 1} {
		d := bytes.Clone(data)
		d[at] ^= 1
		if c, _ := Parse(d); c.Identity() == base.Identity() {
			t.Errorf("changing byte %d kept the identity", at)
		}
	}
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Identity() != base.Identity() {
		t.Error("Open and Parse of the same bytes disagree on the identity")
	}
	if err := ck.Close(); err != nil {
		t.Fatal(err)
	}
	if ck.Identity() != base.Identity() || ck.Embedding != nil || ck.Close() != nil {
		t.Error("Close must keep the identity, clear the views and be idempotent")
	}
}

func TestSynthetic(t *testing.T) {
	cfg := Config{Dim: 64, HiddenDim: 160, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, SeqLen: 32}
	gen := func(cfg Config, seed uint64) []byte {
		var buf bytes.Buffer
		if err := WriteSynthetic(&buf, cfg, seed); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a := gen(cfg, 7)
	if !bytes.Equal(a, gen(cfg, 7)) {
		t.Fatal("same seed, different bytes")
	}
	if bytes.Equal(a, gen(cfg, 8)) {
		t.Fatal("different seeds, same bytes")
	}
	ck, err := Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range tensors(ck) {
		var sum, sq float64
		for _, v := range m.F32 {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		n := float64(len(m.F32))
		mean, std := sum/n, math.Sqrt(sq/n-sum*sum/n/n)
		if m.Rows == 1 {
			if mean != 1 || std != 0 {
				t.Errorf("%s: norm weights mean %v std %v, want all 1", name, mean, std)
			}
		} else if math.Abs(mean) > 0.003 || math.Abs(std-synthStd) > 0.002 {
			t.Errorf("%s: mean %v std %v, want 0 and %v", name, mean, std, synthStd)
		}
	}
	// Every version streams; the quantized one parses with its default group size.
	for _, v := range []int{0, 2} {
		c := cfg
		c.Version = v
		if _, err := Parse(gen(c, 7)); err != nil {
			t.Errorf("version %d: %v", v, err)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := withFormat(tiny, 2, false)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want error
	}{
		{"valid", func(*Config) {}, nil},
		{"zero dim", func(c *Config) { c.Dim = 0 }, ErrShape},
		{"negative layers", func(c *Config) { c.Layers = -1 }, ErrShape},
		{"zero vocab", func(c *Config) { c.Vocab = 0 }, ErrShape},
		{"zero seq len", func(c *Config) { c.SeqLen = 0 }, ErrShape},
		{"heads do not divide dim", func(c *Config) { c.Heads = 3 }, ErrShape},
		{"kv heads do not divide heads", func(c *Config) { c.KVHeads = 3 }, ErrShape},
		{"odd head size", func(c *Config) { c.Dim, c.Heads, c.KVHeads = 12, 4, 4 }, ErrShape},
		{"beyond int32", func(c *Config) { c.Vocab = 1 << 31 }, ErrShape},
		{"too many layers", func(c *Config) { c.Layers = maxLayers + 1 }, ErrShape},
		{"absurd size", func(c *Config) { c.Vocab, c.Dim, c.Heads, c.KVHeads = 1<<30, 1<<30, 1, 1 }, ErrShape},
		{"version 3", func(c *Config) { c.Version = 3 }, ErrFormat},
		{"group size for v1", func(c *Config) { c.Version = 1 }, ErrFormat},
		{"zero group size", func(c *Config) { c.GroupSize = 0 }, ErrFormat},
		{"group does not divide hidden", func(c *Config) { c.GroupSize = 16 }, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			if err := c.Validate(); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Errorf("Validate(%s) = %v, want %v", c, err, tc.want)
			}
		})
	}
}

// damage is a change to a valid file and the error it must cause.
type damage struct {
	name   string
	damage func([]byte) []byte
	want   error
}

// TestBadInput damages valid files of every version: each damage is a clear error.
func TestBadInput(t *testing.T) {
	le := binary.LittleEndian
	put := func(off int, v int32) func([]byte) []byte {
		return func(b []byte) []byte { le.PutUint32(b[off:], uint32(v)); return b }
	}
	for _, version := range []int{0, 1, 2} {
		valid := encode(t, withFormat(tiny, version, version != 1))
		params := 0 // offset of the seven header params
		if version > 0 {
			params = 8
		}
		cases := []damage{
			{"empty", func([]byte) []byte { return nil }, ErrTruncated},
			{"three bytes", func(b []byte) []byte { return b[:3] }, ErrTruncated},
			{"header cut", func(b []byte) []byte { return b[:params+20] }, ErrTruncated},
			{"last byte missing", func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated},
			{"trailing byte", func(b []byte) []byte { return append(b, 0) }, ErrSize},
			{"more layers than data", put(params+8, 3), ErrTruncated},
			{"zero dim", put(params, 0), ErrShape},
			{"negative hidden", put(params+4, -24), ErrShape},
			{"heads do not divide dim", put(params+12, 3), ErrShape},
			{"kv heads do not divide heads", put(params+16, 3), ErrShape},
			{"odd head size", put(params+12, 16), ErrShape},
			{"min int32 vocab", put(params+20, math.MinInt32), ErrShape},
			{"absurd", func(b []byte) []byte {
				for i := range 7 {
					le.PutUint32(b[params+4*i:], math.MaxInt32)
				}
				return b
			}, ErrShape},
		}
		if version > 0 {
			cases = append(cases,
				damage{"version 3", put(4, 3), ErrFormat},
				damage{"shared flag 2", func(b []byte) []byte { b[36] = 2; return b }, ErrFormat})
		}
		if version == 2 {
			for _, gs := range []int32{0, -4, 3, 16} {
				cases = append(cases, damage{fmt.Sprintf("group size %d", gs), put(37, gs), ErrFormat})
			}
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("v%d/%s", version, tc.name), func(t *testing.T) {
				ck, err := Parse(tc.damage(bytes.Clone(valid)))
				if !errors.Is(err, tc.want) {
					t.Errorf("Parse = %v, %v; want %v", ck, err, tc.want)
				}
			})
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty.bin")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); !errors.Is(err, ErrTruncated) {
		t.Errorf("empty file: %v", err)
	}
	cut := filepath.Join(dir, "cut.bin")
	os.WriteFile(cut, encode(t, tiny)[:100], 0o644)
	if _, err := Open(cut); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated file: %v", err)
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	bad := tiny
	bad.Heads = 3
	if err := WriteSynthetic(discard{}, bad, 1); !errors.Is(err, ErrShape) {
		t.Errorf("invalid config: %v", err)
	}
	big := Config{Dim: 512, HiddenDim: 1024, Layers: 4, Heads: 8, KVHeads: 8, Vocab: 1000, SeqLen: 64}
	if err := WriteSynthetic(&failWriter{after: 3 << 20}, big, 1); err == nil {
		t.Error("a failing writer gave no error")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func FuzzParse(f *testing.F) {
	for _, v := range []int{0, 1, 2} {
		f.Add(encode(f, withFormat(tiny, v, v == 1)))
	}
	small := Config{Dim: 4, HiddenDim: 4, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 3, SeqLen: 2}
	f.Add(encode(f, small))
	f.Add(encode(f, withFormat(small, 2, true)))
	if real, err := os.ReadFile(realModel); err == nil {
		f.Add(real[:1024])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := Parse(data)
		if err != nil {
			if ck != nil {
				t.Fatal("an error and a checkpoint")
			}
			return
		}
		if err := ck.Config.Validate(); err != nil {
			t.Fatalf("parsed an invalid config: %v", err)
		}
		checkShapes(t, ck)
		var sum float64 // touch every value: the views lie inside the data
		for _, m := range tensors(ck) {
			for _, v := range m.F32 {
				sum += float64(v)
			}
			for i, q := range m.Q8 {
				sum += float64(q) * float64(m.Scales[i/m.GroupSize])
			}
		}
		_ = sum
	})
}
