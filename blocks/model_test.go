package blocks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The model-based test: random operations applied to a Cache and to a naive model of it
// (reference counts in a slice, the free list as a plain slice searched linearly, each
// sequence's K/V as plain vectors per token), compared after every operation.

// naiveSeq is one sequence of the model and the real table it mirrors.
type naiveSeq struct {
	table  *Table
	blocks []int         // the physical blocks the model predicts
	k, v   [][][]float32 // (tokens, layers) of kvHeads·headSize, as written
}

// naiveBlock is what a hash names: K and V of a full block.
type naiveBlock struct{ k, v [][][]float32 }

type naive struct {
	bs      int
	ref     []int
	free    []int // eviction order
	hash    map[int]BlockHash
	cached  map[BlockHash]int
	content map[BlockHash]naiveBlock
	events  []Event
	seqs    []*naiveSeq
}

func newNaive(n, bs int) *naive {
	m := &naive{bs: bs, ref: make([]int, n), hash: map[int]BlockHash{}, cached: map[BlockHash]int{}, content: map[BlockHash]naiveBlock{}}
	for b := range n {
		m.free = append(m.free, b)
	}
	return m
}

func (m *naive) unhash(b int) {
	if h, ok := m.hash[b]; ok {
		delete(m.hash, b)
		delete(m.cached, h)
		m.events = append(m.events, Event{Removed, h, b})
	}
}

func (m *naive) alloc() int {
	b := m.free[0]
	m.free = m.free[1:]
	m.unhash(b)
	m.ref[b] = 1
	return b
}

func (m *naive) retain(b int) {
	if m.ref[b] == 0 {
		m.free = slices.Delete(m.free, slices.Index(m.free, b), slices.Index(m.free, b)+1)
	}
	m.ref[b]++
}

func (m *naive) drop(b int) {
	m.ref[b]--
	if m.ref[b] == 0 {
		m.free = append(m.free, b)
	}
}

// need is the number of blocks appending n tokens to s takes, and whether it copies.
func (m *naive) need(s *naiveSeq, n int) (int, bool) {
	if n == 0 {
		return 0, false
	}
	l := len(s.k)
	blocks := (l+n+m.bs-1)/m.bs - len(s.blocks)
	cow := l%m.bs != 0 && m.ref[s.blocks[len(s.blocks)-1]] > 1
	if cow {
		blocks++
	}
	return blocks, cow
}

func (m *naive) appendTokens(s *naiveSeq, n int) bool {
	need, cow := m.need(s, n)
	if need > len(m.free) {
		return false
	}
	l := len(s.k)
	if n > 0 && l%m.bs != 0 {
		last := s.blocks[len(s.blocks)-1]
		if cow {
			fresh := m.alloc()
			m.drop(last)
			s.blocks[len(s.blocks)-1] = fresh
		} else {
			m.unhash(last)
		}
	}
	for len(s.blocks) < (l+n+m.bs-1)/m.bs {
		s.blocks = append(s.blocks, m.alloc())
	}
	return true
}

func (m *naive) truncate(s *naiveSeq, n int) {
	keep := (n + m.bs - 1) / m.bs
	for i := len(s.blocks) - 1; i >= keep; i-- {
		m.drop(s.blocks[i])
	}
	s.blocks = s.blocks[:keep]
	s.k, s.v = s.k[:n], s.v[:n]
}

// chooser is where a model run gets its decisions: a seeded generator, or fuzz input.
type chooser interface {
	IntN(n int) int
	Float32() float32
}

// modelRun drives a Cache and the naive model with one stream of choices.
type modelRun struct {
	t      *testing.T
	rng    chooser
	c      *Cache
	m      *naive
	d      DType
	hashes []BlockHash // every hash ever set, cached or since evicted
	events []Event
}

func TestCacheAgainstNaiveModel(t *testing.T) {
	for _, d := range allDTypes {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%v/seed%d", d, seed), func(t *testing.T) {
				cfg := testConfig(12, d)
				r := &modelRun{
					t: t, d: d,
					rng: rand.New(rand.NewPCG(seed, uint64(d))),
					c:   newTestCache(t, cfg),
					m:   newNaive(cfg.NumBlocks, cfg.BlockSize),
				}
				seen := map[string]bool{}
				for i := range 1500 {
					op := r.step()
					seen[op] = true
					if err := r.compare(); err != nil {
						t.Fatalf("op %d (%s): %v", i, op, err)
					}
				}
				// The run must have reached the interesting cases.
				for _, op := range []string{"fork", "revive", "revive: evicted", "hash: duplicate refused", "append 1: false", "truncate 1", "swap", "swap: no block"} {
					if !seen[op] {
						t.Errorf("no %q in the run", op)
					}
				}
				r.finish()
			})
		}
	}
}

// finish releases every sequence, compares once more and checks that the pool is whole.
func (r *modelRun) finish() {
	for len(r.m.seqs) > 0 {
		r.release(0)
	}
	if err := r.compare(); err != nil {
		r.t.Fatalf("after releasing all: %v", err)
	}
	if r.c.NumFree() != r.c.NumBlocks() {
		r.t.Fatalf("%d of %d blocks free after every sequence ended", r.c.NumFree(), r.c.NumBlocks())
	}
}

// step applies one random operation to both and says which.
func (r *modelRun) step() string {
	m, c := r.m, r.c
	var s *naiveSeq
	if len(m.seqs) > 0 {
		s = m.seqs[r.rng.IntN(len(m.seqs))]
	}
	switch op := r.rng.IntN(22); {
	case s == nil || op < 2 && len(m.seqs) < 8:
		s = &naiveSeq{table: &Table{}}
		m.seqs = append(m.seqs, s)
		r.appendTokens(s, 1+r.rng.IntN(3*m.bs))
		return "new"
	case op < 9:
		n := r.rng.IntN(2 * m.bs)
		return fmt.Sprintf("append %d: %v", n, r.appendTokens(s, n))
	case op < 11 && len(m.seqs) < 8:
		f := &naiveSeq{table: c.Fork(s.table), blocks: slices.Clone(s.blocks), k: slices.Clone(s.k), v: slices.Clone(s.v)}
		for _, b := range f.blocks {
			m.retain(b)
		}
		m.seqs = append(m.seqs, f)
		return "fork"
	case op < 13:
		r.release(slices.Index(m.seqs, s))
		return "release"
	case op < 15:
		n := r.rng.IntN(len(s.k) + 1)
		c.Truncate(s.table, n)
		m.truncate(s, n)
		return fmt.Sprintf("truncate %d", n)
	case op < 17:
		return r.setHash(s)
	case op < 20:
		return r.revive(s)
	default:
		return r.swapIn(s)
	}
}

// swapIn exports a full block of s, as the disk tier does, and imports it into the fresh
// block of a new sequence, which must then read exactly the K/V of those tokens.
func (r *modelRun) swapIn(s *naiveSeq) string {
	full := len(s.k) / r.m.bs
	if full == 0 || len(r.m.seqs) >= 8 {
		return "swap: nothing to move"
	}
	i := r.rng.IntN(full)
	payload := r.c.ExportBlock(nil, s.blocks[i])
	n := &naiveSeq{table: &Table{}}
	if !r.m.appendTokens(n, r.m.bs) {
		if r.c.Append(n.table, r.m.bs) {
			r.t.Fatal("Append succeeded, model says the pool is short")
		}
		return "swap: no block"
	}
	if !r.c.Append(n.table, r.m.bs) {
		r.t.Fatal("Append failed, model says it fits")
	}
	if err := r.c.ImportBlock(n.table.Blocks[0], payload); err != nil {
		r.t.Fatal(err)
	}
	n.k = slices.Clone(s.k[i*r.m.bs : (i+1)*r.m.bs])
	n.v = slices.Clone(s.v[i*r.m.bs : (i+1)*r.m.bs])
	r.m.seqs = append(r.m.seqs, n)
	return "swap"
}

// appendTokens appends n tokens to both and writes random K and V at the new positions.
func (r *modelRun) appendTokens(s *naiveSeq, n int) bool {
	if got, _ := r.m.need(s, n); got != r.c.BlocksNeeded(s.table, n) {
		r.t.Fatalf("BlocksNeeded = %d, model says %d", r.c.BlocksNeeded(s.table, n), got)
	}
	want := r.m.appendTokens(s, n)
	if got := r.c.Append(s.table, n); got != want {
		r.t.Fatalf("Append(%d) = %v, model says %v", n, got, want)
	}
	if !want {
		return false
	}
	kvDim := r.c.cfg.KVHeads * r.c.cfg.HeadSize
	for pos := len(s.k); pos < s.table.Len; pos++ {
		b, slot := s.table.Slot(pos)
		var ks, vs [][]float32
		for l := range r.c.cfg.Layers {
			k, v := randVec(r.rng, kvDim, 2), randVec(r.rng, kvDim, 2)
			r.c.Write(b, slot, l, k, v)
			ks, vs = append(ks, k), append(vs, v)
		}
		s.k, s.v = append(s.k, ks), append(s.v, vs)
	}
	return true
}

func (r *modelRun) release(i int) {
	s := r.m.seqs[i]
	r.c.Release(s.table)
	r.m.truncate(s, 0)
	r.m.seqs = slices.Delete(r.m.seqs, i, i+1)
}

// setHash names a random full block of s with a fresh hash, or now and then with a hash
// already cached (which must be refused).
func (r *modelRun) setHash(s *naiveSeq) string {
	full := len(s.k) / r.m.bs
	if full == 0 {
		return "hash: no full block"
	}
	i := r.rng.IntN(full)
	b := s.blocks[i]
	if _, ok := r.m.hash[b]; ok {
		return "hash: already hashed"
	}
	h := BlockHash{byte(len(r.hashes)), byte(len(r.hashes) >> 8), 0x5a}
	if len(r.m.cached) > 0 && r.rng.IntN(4) == 0 {
		for h = range r.m.cached {
			break
		}
	}
	_, dup := r.m.cached[h]
	if got := r.c.SetHash(s.table, i, h); got == dup {
		r.t.Fatalf("SetHash = %v with the hash cached = %v", got, dup)
	}
	if dup {
		return "hash: duplicate refused"
	}
	r.m.hash[b], r.m.cached[h] = h, b
	lo, hi := i*r.m.bs, (i+1)*r.m.bs
	r.m.content[h] = naiveBlock{slices.Clone(s.k[lo:hi]), slices.Clone(s.v[lo:hi])}
	r.m.events = append(r.m.events, Event{Stored, h, b})
	r.hashes = append(r.hashes, h)
	return "hash"
}

// revive looks up a hash ever set and, if it is still cached, appends its block to s (if
// s holds whole blocks) or to a new sequence.
func (r *modelRun) revive(s *naiveSeq) string {
	if len(r.hashes) == 0 {
		return "revive: nothing hashed"
	}
	h := r.hashes[r.rng.IntN(len(r.hashes))]
	wantB, wantOK := r.m.cached[h]
	b, ok := r.c.Lookup(h)
	if ok != wantOK || ok && b != wantB {
		r.t.Fatalf("Lookup = %d, %v; model says %d, %v", b, ok, wantB, wantOK)
	}
	if !ok {
		return "revive: evicted"
	}
	if len(s.k)%r.m.bs != 0 {
		if len(r.m.seqs) >= 8 {
			return "revive: no room"
		}
		s = &naiveSeq{table: &Table{}}
		r.m.seqs = append(r.m.seqs, s)
	}
	r.c.AppendCached(s.table, b)
	r.m.retain(b)
	s.blocks = append(s.blocks, b)
	s.k = append(s.k, r.m.content[h].k...)
	s.v = append(s.v, r.m.content[h].v...)
	return "revive"
}

// compare checks the cache against the model: tables, free list order, events, invariants,
// and every live token's K/V read through its table, directly and through Scores/AccumV.
func (r *modelRun) compare() error {
	c, m := r.c, r.m
	if err := c.Check(); err != nil {
		return err
	}
	if got := c.pool.FreeList(nil); !slices.Equal(got, m.free) {
		return fmt.Errorf("free list %v, model %v", got, m.free)
	}
	r.events = c.TakeEvents(r.events[:0])
	if !slices.Equal(r.events, m.events) {
		return fmt.Errorf("events %v, model %v", r.events, m.events)
	}
	m.events = m.events[:0]
	hs := c.cfg.HeadSize
	got := make([]float32, hs)
	for i, s := range m.seqs {
		if !slices.Equal(s.table.Blocks, s.blocks) || s.table.Len != len(s.k) {
			return fmt.Errorf("seq %d: table %v len %d, model %v len %d", i, s.table.Blocks, s.table.Len, s.blocks, len(s.k))
		}
		for pos := range s.k {
			b, slot := s.table.Slot(pos)
			for l := range c.cfg.Layers {
				for h := range c.cfg.KVHeads {
					for kv, want := range [2][]float32{s.k[pos][l][h*hs : (h+1)*hs], s.v[pos][l][h*hs : (h+1)*hs]} {
						if kv == 0 {
							c.ReadK(got, b, slot, l, h)
						} else {
							c.ReadV(got, b, slot, l, h)
						}
						if err := r.within(got, want); err != nil {
							return fmt.Errorf("seq %d pos %d layer %d head %d kv %d: %v", i, pos, l, h, kv, err)
						}
					}
				}
			}
		}
		if err := r.attention(s); err != nil {
			return fmt.Errorf("seq %d: %v", i, err)
		}
	}
	return nil
}

// elemBound is the largest error the dtype may make on element x of a row whose largest
// magnitude is maxabs (with a hair of slack for the fp32 product that dequantizes).
func elemBound(d DType, x, maxabs float32) float64 {
	const slack = 1 + 1.0/(1<<20)
	switch d {
	case FP16:
		return max(math.Abs(float64(x))/2048, 1.0/(1<<25))
	case Int8:
		return float64(maxabs) / 254 * slack
	case Int4:
		return float64(maxabs) / 14 * slack
	}
	return 0
}

func maxAbs(x []float32) float32 {
	var m float32
	for _, v := range x {
		m = max(m, float32(math.Abs(float64(v))))
	}
	return m
}

// within checks a dequantized row against what was written.
func (r *modelRun) within(got, want []float32) error {
	ma := maxAbs(want)
	for i := range want {
		if e := math.Abs(float64(got[i]) - float64(want[i])); e > elemBound(r.d, want[i], ma) {
			return fmt.Errorf("element %d: %v, wrote %v (error %g)", i, got[i], want[i], e)
		}
	}
	return nil
}

// attention runs Scores and AccumV over the whole sequence for one random layer and head,
// as the model does block by block, and compares them with naive sums over the written
// values: equal for FP32, within the dtype's error otherwise.
func (r *modelRun) attention(s *naiveSeq) error {
	c, bs, hs := r.c, r.m.bs, r.c.cfg.HeadSize
	n := len(s.k)
	if n == 0 {
		return nil
	}
	l, h := r.rng.IntN(c.cfg.Layers), r.rng.IntN(c.cfg.KVHeads)
	q := randVec(r.rng, hs, 1)
	scores := make([]float32, n)
	for b := 0; b*bs < n; b++ {
		c.Scores(scores[b*bs:], q, s.table.Blocks[b], l, h, min(bs, n-b*bs))
	}
	w := randVec(r.rng, n, 1)
	out := make([]float32, hs)
	for b := 0; b*bs < n; b++ {
		c.AccumV(out, w[b*bs:], s.table.Blocks[b], l, h, min(bs, n-b*bs))
	}
	wantOut := make([]float32, hs)
	var outErr float64
	for pos := range n {
		k, v := s.k[pos][l][h*hs:(h+1)*hs], s.v[pos][l][h*hs:(h+1)*hs]
		var dot float32
		var dotErr, mag float64
		mk := maxAbs(k)
		for i := range q {
			dot += float32(q[i] * k[i])
			dotErr += math.Abs(float64(q[i])) * elemBound(r.d, k[i], mk)
			mag += math.Abs(float64(q[i] * k[i]))
		}
		if r.d == FP32 && scores[pos] != dot || math.Abs(float64(scores[pos]-dot)) > dotErr+mag*1e-6 {
			return fmt.Errorf("score %d: %v, naive %v", pos, scores[pos], dot)
		}
		mv := maxAbs(v)
		for i := range wantOut {
			wantOut[i] += float32(w[pos] * v[i])
			outErr = max(outErr, 0) + math.Abs(float64(w[pos]))*elemBound(r.d, v[i], mv)/float64(hs)
		}
	}
	for i := range out {
		if r.d == FP32 && out[i] != wantOut[i] || math.Abs(float64(out[i]-wantOut[i])) > outErr*float64(hs)+1e-5 {
			return fmt.Errorf("accumV[%d] = %v, naive %v", i, out[i], wantOut[i])
		}
	}
	return nil
}

// fuzzChoices takes decisions from fuzz input, one byte each, and values from a generator
// seeded by it; when the input runs out every decision is 0.
type fuzzChoices struct {
	data []byte
	vals *rand.Rand
}

func (f *fuzzChoices) IntN(n int) int {
	if len(f.data) == 0 {
		return 0
	}
	b := int(f.data[0])
	f.data = f.data[1:]
	return b % n
}

func (f *fuzzChoices) Float32() float32 { return f.vals.Float32() }

// FuzzCacheOps runs the model-based test on operation sequences the fuzzer chooses.
func FuzzCacheOps(f *testing.F) {
	f.Add(uint8(12), uint8(0), []byte{0, 3, 5, 9, 10, 3, 15, 4, 16, 0, 17, 2, 12, 1, 6})
	f.Add(uint8(3), uint8(1), []byte{0, 30, 9, 10, 9, 10, 5, 19, 5, 19, 0, 19, 12, 0, 13, 1})
	f.Add(uint8(5), uint8(3), []byte{0, 40, 15, 3, 16, 0, 17, 2, 12, 3, 18, 0, 5, 7, 13, 2, 4, 9})
	f.Fuzz(func(t *testing.T, numBlocks, dtype uint8, ops []byte) {
		d := DType(dtype % 4)
		cfg := testConfig(1+int(numBlocks%24), d)
		r := &modelRun{
			t: t, d: d,
			rng: &fuzzChoices{data: ops, vals: rand.New(rand.NewPCG(uint64(len(ops)), 1))},
			c:   newTestCache(t, cfg),
			m:   newNaive(cfg.NumBlocks, cfg.BlockSize),
		}
		for i := 0; len(r.rng.(*fuzzChoices).data) > 0 && i < 500; i++ {
			op := r.step()
			if err := r.compare(); err != nil {
				t.Fatalf("op %d (%s): %v", i, op, err)
			}
		}
		r.finish()
	})
}
