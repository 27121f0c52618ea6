package shard

import (
	"errors"
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
