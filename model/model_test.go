package model

import (
	"fmt"
	"math"
	"testing"

	"github.com/kvmesh/kvmesh/internal/reftest"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/sample"
)

const bos = reftest.BOS

// refCase is one generation of llama2.c's run.c.
type refCase = reftest.Case

func loadReference(t testing.TB) (greedy, sampled []refCase) { return reftest.Load(t) }

func loadModel(t testing.TB) *Model {
	t.Helper()
	ck, err := ckpt.Open(reftest.Model)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := New(ck)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newCache(t testing.TB, m *Model, blockSize int, dtype blocks.DType) *blocks.Cache {
	t.Helper()
	cfg := blocks.DefaultConfig()
	cfg.Shape = m.KVShape(blockSize)
	cfg.DType = dtype
	cfg.NumBlocks = 16 * (m.Config.SeqLen/blockSize + 1)
	c, err := blocks.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Check(); err != nil {
			t.Errorf("cache invariants: %v", err)
		}
	})
	return c
}

// stream is one sequence being generated the way run.c does it: prompt tokens are forced,
// then each sampled token is fed back, until steps positions or BOS.
type stream struct {
	ref   refCase
	table *blocks.Table
	next  int   // index of the next prompt token to feed while prefilling
	out   []int // generated ids
	done  bool
}

// pending returns the tokens the stream feeds in its next step.
func (s *stream) pending(chunk int) []int {
	if s.next < len(s.ref.PromptIDs) {
		end := min(len(s.ref.PromptIDs), s.next+chunk)
		return s.ref.PromptIDs[s.next:end]
	}
	return s.out[len(s.out)-1:]
}

// runStreams generates all streams in shared batches until every one is done. chunk is
// the most prompt tokens a stream prefills per step.
func runStreams(t *testing.T, r *Runner, cache *blocks.Cache, streams []*stream, chunk int, smp *sample.Sampler) {
	t.Helper()
	for {
		var batch []Seq
		var live []*stream
		for _, s := range streams {
			if s.done {
				continue
			}
			toks := s.pending(chunk)
			if !cache.Append(s.table, len(toks)) {
				t.Fatalf("out of KV blocks")
			}
			batch = append(batch, Seq{Table: s.table, Tokens: toks})
			live = append(live, s)
		}
		if len(batch) == 0 {
			return
		}
		logits, err := r.Forward(batch, cache)
		if err != nil {
			t.Fatal(err)
		}
		vocab := r.Model().Config.Vocab
		for i, s := range live {
			s.next += len(batch[i].Tokens)
			if s.next < len(s.ref.PromptIDs) {
				continue // still prefilling: run.c forces the next prompt token
			}
			pos := s.table.Len - 1
			p := sample.Params{Temperature: s.ref.Temperature, TopP: s.ref.TopP, Seed: s.ref.Seed}
			tok := smp.Sample(logits[i*vocab:(i+1)*vocab], p, pos-(len(s.ref.PromptIDs)-1))
			s.out = append(s.out, tok)
			if tok == bos || s.table.Len >= s.ref.Steps {
				s.done = true
				cache.Release(s.table)
			}
		}
	}
}

func newStreams(cases []refCase) []*stream {
	streams := make([]*stream, len(cases))
	for i, c := range cases {
		streams[i] = &stream{ref: c, table: &blocks.Table{}}
	}
	return streams
}

func checkStreams(t *testing.T, streams []*stream) {
	t.Helper()
	for _, s := range streams {
		if !equalIDs(s.out, s.ref.GeneratedIDs) {
			t.Errorf("prompt %q: generated %d ids, first difference at %d\n got %v\nwant %v",
				s.ref.Prompt, len(s.out), firstDiff(s.out, s.ref.GeneratedIDs), s.out, s.ref.GeneratedIDs)
		}
	}
}

// TestGreedyMatchesReference checks every greedy case of llama2.c, one sequence at a time,
// for several block sizes and with the prompt prefilled in one pass or token by token.
func TestGreedyMatchesReference(t *testing.T) {
	m := loadModel(t)
	greedy, _ := loadReference(t)
	for _, bs := range []int{1, 16, 64} {
		for _, chunk := range []int{1, 1 << 20} {
			name := fmt.Sprintf("block%d/chunk%d", bs, min(chunk, 9999))
			t.Run(name, func(t *testing.T) {
				r := NewRunner(m, RunnerConfig{})
				defer r.Close()
				cache := newCache(t, m, bs, blocks.FP32)
				smp := sample.New(m.Config.Vocab)
				for _, c := range greedy {
					streams := newStreams([]refCase{c})
					runStreams(t, r, cache, streams, chunk, smp)
					checkStreams(t, streams)
				}
				if cache.NumFree() != cache.NumBlocks() {
					t.Errorf("%d of %d blocks free after all sequences ended", cache.NumFree(), cache.NumBlocks())
				}
			})
		}
	}
}

// TestMixedBatchMatchesReference runs every greedy case in one batch: prompts of different
// lengths prefill together, then all decode together, leaving as they finish.
func TestMixedBatchMatchesReference(t *testing.T) {
	m := loadModel(t)
	greedy, _ := loadReference(t)
	for _, chunk := range []int{3, 1 << 20} {
		t.Run(fmt.Sprintf("chunk%d", min(chunk, 9999)), func(t *testing.T) {
			r := NewRunner(m, RunnerConfig{MaxTokens: 128})
			defer r.Close()
			cache := newCache(t, m, 16, blocks.FP32)
			streams := newStreams(greedy)
			runStreams(t, r, cache, streams, chunk, sample.New(m.Config.Vocab))
			checkStreams(t, streams)
			if cache.NumFree() != cache.NumBlocks() {
				t.Errorf("%d of %d blocks free after all sequences ended", cache.NumFree(), cache.NumBlocks())
			}
		})
	}
}

// TestSampledMatchesReference checks run.c's seeded temperature/top-p sampling, which the
// sampler reproduces draw for draw.
func TestSampledMatchesReference(t *testing.T) {
	m := loadModel(t)
	_, sampled := loadReference(t)
	r := NewRunner(m, RunnerConfig{})
	defer r.Close()
	cache := newCache(t, m, 16, blocks.FP32)
	streams := newStreams(sampled)
	runStreams(t, r, cache, streams, 1<<20, sample.New(m.Config.Vocab))
	checkStreams(t, streams)
}

// TestForwardAllocatesNothing runs decode steps of a warm Runner and counts allocations.
func TestForwardAllocatesNothing(t *testing.T) {
	m := loadModel(t)
	r := NewRunner(m, RunnerConfig{MaxTokens: 64})
	defer r.Close()
	cache := newCache(t, m, 16, blocks.FP32)
	tables := []*blocks.Table{{}, {}}
	batch := []Seq{{Table: tables[0], Tokens: []int{1}}, {Table: tables[1], Tokens: []int{1}}}
	step := func() {
		for _, s := range batch {
			if s.Table.Len >= 400 {
				cache.Release(s.Table)
			}
			if !cache.Append(s.Table, 1) {
				t.Fatal("out of blocks")
			}
		}
		if _, err := r.Forward(batch, cache); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if a := testing.AllocsPerRun(50, step); a != 0 {
		t.Errorf("Forward allocates %v times per step, want 0", a)
	}
	for _, tb := range tables {
		cache.Release(tb)
	}
}

func TestForwardRejectsBadBatch(t *testing.T) {
	m := loadModel(t)
	r := NewRunner(m, RunnerConfig{MaxTokens: 8})
	defer r.Close()
	cache := newCache(t, m, 16, blocks.FP32)
	room := func(n int) *blocks.Table {
		tb := &blocks.Table{}
		if !cache.Append(tb, n) {
			t.Fatal("out of blocks")
		}
		t.Cleanup(func() { cache.Release(tb) })
		return tb
	}
	tests := []struct {
		name  string
		batch []Seq
	}{
		{"no tokens", []Seq{{Table: room(1)}}},
		{"no room", []Seq{{Table: &blocks.Table{}, Tokens: []int{1}}}},
		{"token out of vocabulary", []Seq{{Table: room(1), Tokens: []int{512}}}},
		{"negative token", []Seq{{Table: room(1), Tokens: []int{-1}}}},
		{"too many tokens", []Seq{{Table: room(9), Tokens: make([]int, 9)}}},
	}
	for _, tt := range tests {
		if _, err := r.Forward(tt.batch, cache); err == nil {
			t.Errorf("%s: Forward accepted it", tt.name)
		}
	}
}

// agreement is what TestQuantizedKVAgreement reports for one storage type.
type agreement struct {
	positions, agree int
	maxDiff          float64
}

// TestQuantizedKVAgreement feeds the fp32 greedy sequences of the reference prompts as
// input (teacher forcing) and compares, position by position, the argmax and the logits
// of each KV storage type with fp32 storage.
func TestQuantizedKVAgreement(t *testing.T) {
	m := loadModel(t)
	greedy, _ := loadReference(t)
	r := NewRunner(m, RunnerConfig{MaxTokens: m.Config.SeqLen})
	defer r.Close()
	vocab := m.Config.Vocab

	run := func(dtype blocks.DType, seq []int) []float32 {
		cache := newCache(t, m, 16, dtype)
		tb := &blocks.Table{}
		if !cache.Append(tb, len(seq)) {
			t.Fatal("out of blocks")
		}
		defer cache.Release(tb)
		logits, err := r.Forward([]Seq{{Table: tb, Tokens: seq, AllLogits: true}}, cache)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), logits...)
	}

	minShare := map[blocks.DType]float64{blocks.FP16: 0.995, blocks.Int8: 0.95, blocks.Int4: 0}
	for _, dtype := range []blocks.DType{blocks.FP16, blocks.Int8, blocks.Int4} {
		var a agreement
		for _, c := range greedy {
			seq := append(append([]int(nil), c.PromptIDs...), c.GeneratedIDs...)
			seq = seq[:min(len(seq), c.Steps)]
			want := run(blocks.FP32, seq)
			got := run(dtype, seq)
			for p := range len(seq) {
				w, g := want[p*vocab:(p+1)*vocab], got[p*vocab:(p+1)*vocab]
				a.positions++
				if sample.Argmax(w) == sample.Argmax(g) {
					a.agree++
				}
				for j := range w {
					a.maxDiff = math.Max(a.maxDiff, math.Abs(float64(w[j]-g[j])))
				}
			}
		}
		share := float64(a.agree) / float64(a.positions)
		t.Logf("KV %-4v: argmax agrees with fp32 at %d of %d positions (%.2f%%), largest logit difference %.4g",
			dtype, a.agree, a.positions, 100*share, a.maxDiff)
		if share < minShare[dtype] {
			t.Errorf("KV %v: agreement %.4f below %.4f", dtype, share, minShare[dtype])
		}
	}
}

func equalIDs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestStagesEqualWholeModel splits the model into pipeline stages, each with a mirror
// cache of its own layers at the leader's block ids, and checks that the logits of a
// prefill and of decode steps are bit-identical to the whole model's.
func TestStagesEqualWholeModel(t *testing.T) {
	m := loadModel(t)
	greedy, _ := loadReference(t)
	c := greedy[0]
	seq := append(append([]int(nil), c.PromptIDs...), c.GeneratedIDs[:40]...)
	whole := NewRunner(m, RunnerConfig{})
	defer whole.Close()
	leaderCache := newCache(t, m, 16, blocks.FP32)
	tb := &blocks.Table{}
	defer leaderCache.Release(tb)

	splits := [][2]int{{0, 2}, {2, 3}, {3, 5}}
	stages := make([]*Runner, len(splits))
	caches := make([]*blocks.Cache, len(splits))
	for i, sp := range splits {
		stages[i] = NewRunner(m, RunnerConfig{First: sp[0], Last: sp[1]})
		defer stages[i].Close()
		cfg := blocks.DefaultConfig()
		cfg.Shape = m.KVShape(16)
		cfg.Shape.Layers = sp[1] - sp[0]
		cfg.NumBlocks, cfg.Mirror = leaderCache.NumBlocks(), true
		var err error
		if caches[i], err = blocks.New(cfg); err != nil {
			t.Fatal(err)
		}
	}
	// Prefill the first 20 tokens, then decode one at a time.
	for start, n := 0, 20; start < len(seq); start, n = start+n, 1 {
		feed := seq[start : start+n]
		if !leaderCache.Append(tb, n) {
			t.Fatal("out of blocks")
		}
		want, err := whole.Forward([]Seq{{Table: tb, Tokens: feed, AllLogits: true}}, leaderCache)
		if err != nil {
			t.Fatal(err)
		}
		var x []float32
		for i, st := range stages {
			view := caches[i].View(tb.Blocks, tb.Len)
			if x, err = st.Stage([]Seq{{Table: view, Tokens: feed, AllLogits: true}}, caches[i], x); err != nil {
				t.Fatal(err)
			}
			x = append([]float32(nil), x...) // the next stage gets a copy, as over the network
		}
		for j := range want {
			if want[j] != x[j] {
				t.Fatalf("tokens %d..%d: logit %d is %v in stages, %v whole", start, start+n, j, x[j], want[j])
			}
		}
	}
	if _, err := stages[1].Forward([]Seq{{Table: tb, Tokens: seq[:1]}}, caches[1]); err == nil {
		t.Error("Forward on a middle stage succeeded")
	}
}
