package shard

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	m := Model{Layers: 5, LayerBytes: 100, EmbedBytes: 50, HeadBytes: 50, KVBytesPerToken: 1}
	plan, errs := Build(m, []Worker{
		{ID: "a", Range: rng(Range{0, 3}), Pipeline: "p0", Ready: true},
		{ID: "b", Range: rng(Range{3, 5}), Pipeline: "p1"},
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, tc := range []struct {
		name string
		w    Worker
		err  error
		msg  []string // what the message must name
	}{
		{"no range", Worker{ID: "x"}, nil, nil},
		{"free layers", Worker{ID: "x", Range: rng(Range{3, 5}), Pipeline: "p0"}, nil, nil},
		{"other pipeline", Worker{ID: "x", Range: rng(Range{0, 3}), Pipeline: "p1"}, nil, nil},
		{"no pipeline yet", Worker{ID: "x", Range: rng(Range{0, 5})}, nil, nil},
		{"its own place", Worker{ID: "a", Range: rng(Range{0, 3}), Pipeline: "p0"}, nil, nil},
		{"overlap", Worker{ID: "x", Range: rng(Range{2, 5}), Pipeline: "p0"}, ErrOverlap,
			[]string{`"x"`, "2:5", `"a"`, "0:3", `"p0"`}},
		{"past the model", Worker{ID: "x", Range: rng(Range{3, 6})}, ErrRange, []string{`"x"`, "3:6", "5 layers"}},
		{"inverted", Worker{ID: "x", Range: rng(Range{3, 2})}, ErrRange, []string{"3:2"}},
		{"empty", Worker{ID: "x", Range: rng(Range{2, 2})}, ErrRange, []string{"2:2"}},
		{"negative", Worker{ID: "x", Range: rng(Range{-1, 2})}, ErrRange, []string{"-1:2"}},
		{"too small", Worker{ID: "x", MemoryBytes: 249, Range: rng(Range{0, 2})}, ErrNoFit, []string{`"x"`, "249", "250"}},
		{"just fits", Worker{ID: "x", MemoryBytes: 250, Range: rng(Range{0, 2})}, nil, nil},
	} {
		err := Check(m, plan, tc.w)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: Check = %v, want %v", tc.name, err, tc.err)
			continue
		}
		for _, s := range tc.msg {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not name %s", tc.name, err, s)
			}
		}
	}
}

// Workers of equal memory started together split a model whose embedding and classifier
// are free into stages that differ by at most one layer, and never leave a worker out of
// a pipeline it could complete.
func TestEqualWorkersBalance(t *testing.T) {
	for layers := 1; layers <= 24; layers++ {
		for per := 1; per <= layers; per++ { // layers a worker can hold
			for n := 1; n <= 6; n++ {
				m := Model{Layers: layers, LayerBytes: 10}
				s := newSim(m, 0)
				var ids []string
				for i := range n {
					w := Worker{ID: string(rune('a' + i)), MemoryBytes: int64(per) * 10}
					s.workers[w.ID] = w
					ids = append(ids, w.ID)
				}
				s.assign(t, ids...)
				p, _ := s.build(t)
				need := (layers + per - 1) / per // workers a pipeline takes
				if want := n / need; len(p.Serving(m, func(string) bool { return true })) != want {
					t.Fatalf("%d layers, %d workers of %d: %d complete pipelines, want %d:\n%s",
						layers, n, per, len(p.Serving(m, func(string) bool { return true })), want, describe(m, p, nil))
				}
				for _, pl := range p.Pipelines {
					lo, hi := layers, 0
					for _, st := range pl.Stages {
						lo, hi = min(lo, st.Range.Len()), max(hi, st.Range.Len())
					}
					if hi-lo > 1 {
						t.Fatalf("%d layers, %d workers of %d: unbalanced pipeline:\n%s", layers, n, per, describe(m, p, nil))
					}
				}
			}
		}
	}
}

// When the workers of a group can cover a gap each holding all it can, the proportional
// split covers it too, and every stage fits its worker.
func TestFillCovers(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 20000 {
		m := Model{Layers: 1 + r.IntN(16), LayerBytes: 1 + r.Int64N(100), EmbedBytes: r.Int64N(300),
			HeadBytes: r.Int64N(300), KVBytesPerToken: r.Int64N(4)}
		kv := r.IntN(10)
		var pool []Worker
		for j := range 1 + r.IntN(5) {
			pool = append(pool, Worker{ID: fmt.Sprintf("w%d", j), MemoryBytes: r.Int64N(m.Bytes(Range{0, m.Layers}, kv) + 100)})
		}
		slices.SortFunc(pool, byMemory)
		g := Range{0, m.Layers}
		if r.IntN(2) == 0 {
			a := r.IntN(m.Layers)
			g = Range{a, a + 1 + r.IntN(m.Layers-a)}
		}
		pos := g.First // the greedy cover, each worker holding all it can
		for _, w := range pool {
			if pos < g.Last {
				pos += m.fitFrom(w.MemoryBytes, pos, g.Last, kv)
			}
		}
		var p Plan
		left := slices.Clone(pool)
		p.fill(m, "p", g, &left, kv, "")
		var covered int
		for _, st := range p.pipeline("p").Stages {
			covered += st.Range.Len()
			if need := m.Bytes(st.Range, kv); need > mustWorker(t, pool, st.Worker).MemoryBytes {
				t.Fatalf("case %d: %+v kv=%d gap %s: stage %s %s needs %d, worker has %d",
					i, m, kv, g, st.Worker, st.Range, need, mustWorker(t, pool, st.Worker).MemoryBytes)
			}
		}
		checkPlan(t, m, p)
		if pos >= g.Last && covered != g.Len() {
			t.Fatalf("case %d: %+v kv=%d gap %s, pool %+v: the greedy cover holds it, the split covers %d layers:\n%s",
				i, m, kv, g, pool, covered, describe(m, p, nil))
		}
	}
}

func mustWorker(t *testing.T, ws []Worker, id string) Worker {
	t.Helper()
	for _, w := range ws {
		if w.ID == id {
			return w
		}
	}
	t.Fatalf("no worker %q", id)
	return Worker{}
}
