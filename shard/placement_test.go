package shard

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func rng(r Range) *Range { return &r }

func TestComplete(t *testing.T) {
	m := Model{Layers: 5}
	ready := func(string) bool { return true }
	for _, tc := range []struct {
		name   string
		stages []Stage
		ready  func(string) bool
		want   bool
	}{
		{"one stage", []Stage{{"a", Range{0, 5}, true}}, nil, true},
		{"two stages", []Stage{{"a", Range{0, 2}, true}, {"b", Range{2, 5}, true}}, nil, true},
		{"one loading", []Stage{{"a", Range{0, 2}, true}, {"b", Range{2, 5}, false}}, nil, false},
		{"ready func overrides", []Stage{{"a", Range{0, 2}, false}, {"b", Range{2, 5}, false}}, ready, true},
		{"ready func says no", []Stage{{"a", Range{0, 5}, true}}, func(string) bool { return false }, false},
		{"missing head", []Stage{{"a", Range{1, 5}, true}}, nil, false},
		{"missing tail", []Stage{{"a", Range{0, 4}, true}}, nil, false},
		{"hole", []Stage{{"a", Range{0, 2}, true}, {"b", Range{3, 5}, true}}, nil, false},
		{"overlap", []Stage{{"a", Range{0, 3}, true}, {"b", Range{2, 5}, true}}, nil, false},
		{"empty", nil, nil, false},
	} {
		if got := (Pipeline{ID: "p", Stages: tc.stages}).Complete(m, tc.ready); got != tc.want {
			t.Errorf("%s: Complete = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestServing(t *testing.T) {
	m := Model{Layers: 4, LayerBytes: 1}
	p, errs := Build(m, []Worker{
		{ID: "a", Range: rng(Range{0, 4}), Pipeline: "p2", Ready: true},
		{ID: "b", Range: rng(Range{0, 2}), Pipeline: "p1", Ready: true},
		{ID: "c", Range: rng(Range{2, 4}), Pipeline: "p1", Ready: true},
		{ID: "d", Range: rng(Range{0, 4}), Pipeline: "p0"},
		{ID: "e", Range: rng(Range{0, 2}), Pipeline: "p3", Ready: true},
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var ids []string
	for _, pl := range p.Serving(m, nil) {
		ids = append(ids, pl.ID)
	}
	if want := []string{"p1", "p2"}; !slices.Equal(ids, want) {
		t.Errorf("Serving = %v, want %v", ids, want)
	}
	if n := len(p.Serving(m, func(string) bool { return true })); n != 3 {
		t.Errorf("Serving with all ready = %d pipelines, want 3", n)
	}
	if pl, s, ok := p.Find("c"); !ok || pl.ID != "p1" || s.Range != (Range{2, 4}) {
		t.Errorf("Find(c) = %v %v %v", pl.ID, s, ok)
	}
	if _, _, ok := p.Find("z"); ok {
		t.Errorf("Find(z) found a worker not in the view")
	}
}

// Build is a function of the set of workers: every permutation gives the same plan and
// the same refusals.
func TestBuildOrderIndependent(t *testing.T) {
	m := Model{Layers: 6, LayerBytes: 10}
	ws := []Worker{
		{ID: "a", Range: rng(Range{0, 3}), Pipeline: "p0"},
		{ID: "b", Range: rng(Range{2, 6}), Pipeline: "p0", Ready: true},
		{ID: "c", Range: rng(Range{0, 2}), Pipeline: "p0"},
		{ID: "d", Range: rng(Range{0, 6}), Pipeline: "p1"},
		{ID: "e"},
		{ID: "f", Range: rng(Range{4, 9}), Pipeline: "p1"},
		{ID: "e"},
		{ID: ""},
	}
	want, wantErrs := Build(m, ws)
	checkPlan(t, m, want)
	wantS := describe(m, want, wantErrs)
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		r.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
		p, errs := Build(m, ws)
		if got := describe(m, p, errs); got != wantS {
			t.Fatalf("Build of %v:\n%s\nwant:\n%s", ws, got, wantS)
		}
	}
	// b is ready and wins over a; c, loading, fits beside b; f is outside the model; the
	// repeated e and the empty ID are refused.
	const golden = `p0: c 0:2 loading, b 2:6 ready; complete, not ready
p1: d 0:6 loading; complete, not ready
waiting: e
error: shard: bad worker: a worker without an ID
error: shard: overlapping layer ranges: worker "a" (layers 0:3) overlaps worker "b" (layers 2:6) in pipeline "p0"; "a" is refused
error: shard: bad worker: worker "e" appears twice in the view
error: worker "f": shard: bad layer range: layers 4:9: the model has 6 layers (0:6)
`
	if wantS != golden {
		t.Errorf("Build:\n%s\nwant:\n%s", wantS, golden)
	}
	for _, err := range wantErrs {
		if errName(err) == "other" {
			t.Errorf("error %v wraps no sentinel", err)
		}
	}
}

func TestAssignKeepsPlace(t *testing.T) {
	m := Model{Layers: 4, LayerBytes: 100}
	w := Worker{ID: "a", MemoryBytes: 200, Range: rng(Range{0, 2}), Pipeline: "p3"}
	p, _ := Build(m, []Worker{w})
	// A placed worker keeps its place, whatever its record says now.
	for _, ask := range []Worker{w, {ID: "a", MemoryBytes: 1}} {
		r, pl, err := p.Assign(m, ask, 0)
		if err != nil || r != (Range{0, 2}) || pl != "p3" {
			t.Errorf("Assign(%+v) = %v %q %v, want 0:2 p3", ask, r, pl, err)
		}
	}
	// An explicit range and pipeline not in the plan are kept when Check passes.
	r, pl, err := p.Assign(m, Worker{ID: "b", Range: rng(Range{2, 4}), Pipeline: "p3"}, 0)
	if err != nil || r != (Range{2, 4}) || pl != "p3" {
		t.Errorf("Assign(b 2:4 p3) = %v %q %v", r, pl, err)
	}
	_, _, err = p.Assign(m, Worker{ID: "b", Range: rng(Range{1, 4}), Pipeline: "p3"}, 0)
	if !errors.Is(err, ErrOverlap) {
		t.Errorf("Assign(b 1:4 p3) = %v, want ErrOverlap", err)
	}
	_, _, err = p.Assign(m, Worker{ID: "b", Range: rng(Range{1, 5})}, 0)
	if !errors.Is(err, ErrRange) {
		t.Errorf("Assign(b 1:5) = %v, want ErrRange", err)
	}
	_, _, err = p.Assign(m, Worker{}, 0)
	if !errors.Is(err, ErrBadWorker) {
		t.Errorf("Assign without ID = %v, want ErrBadWorker", err)
	}
}

// fitFrom and fitTo against the naive answer: the largest n whose Bytes fit.
func TestFitAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		m := Model{Layers: 1 + r.IntN(12), LayerBytes: r.Int64N(50), EmbedBytes: r.Int64N(100),
			HeadBytes: r.Int64N(100), KVBytesPerToken: r.Int64N(4)}
		kv, mem := r.IntN(5), r.Int64N(700)
		a := r.IntN(m.Layers)
		b := a + 1 + r.IntN(m.Layers-a)
		naiveFrom, naiveTo := 0, 0
		for n := 1; n <= b-a; n++ {
			if m.Bytes(Range{a, a + n}, kv) <= mem {
				naiveFrom = n
			}
			if m.Bytes(Range{b - n, b}, kv) <= mem {
				naiveTo = n
			}
		}
		if got := m.fitFrom(mem, a, b, kv); got != naiveFrom {
			t.Fatalf("%+v kv=%d mem=%d: fitFrom(%d, %d) = %d, want %d", m, kv, mem, a, b, got, naiveFrom)
		}
		if got := m.fitTo(mem, a, b, kv); got != naiveTo {
			t.Fatalf("%+v kv=%d mem=%d: fitTo(%d, %d) = %d, want %d", m, kv, mem, a, b, got, naiveTo)
		}
	}
}

// TestRandomJoinsAndDeaths: after any sequence of joins (with or without explicit ranges,
// alone or several at once) and deaths, Build's pipelines keep their invariants, and
// Assign never returns a range that overlaps a live stage of its pipeline, leaves the
// model, or does not fit the worker (checkPlan and checkAssigned, run by sim).
func TestRandomJoinsAndDeaths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var assigned, refused, serving int
	rounds := 60
	if testing.Short() {
		rounds = 20
	}
	for round := range rounds {
		m := Model{Layers: 1 + r.IntN(10), LayerBytes: 10 + r.Int64N(100), EmbedBytes: r.Int64N(200),
			HeadBytes: r.Int64N(200), KVBytesPerToken: r.Int64N(3)}
		s := newSim(m, r.IntN(20))
		next := 0
		byHand := map[string]bool{}   // workers started with an explicit pipeline
		explicit := map[string]bool{} // workers started with an explicit range
		for range 40 {
			switch op := r.IntN(10); {
			case op < 6: // one to three workers start and ask on the same view
				var ids []string
				for range 1 + r.IntN(3) {
					w := Worker{ID: fmt.Sprintf("w%d", next), MemoryBytes: r.Int64N(m.Bytes(Range{0, m.Layers}, s.minKV) + 300),
						Incarnation: uint64(next)}
					next++
					if r.IntN(4) == 0 {
						a := r.IntN(m.Layers + 1)
						w.Range = &Range{a, a + 1 + r.IntN(3)}
						explicit[w.ID] = true
						if r.IntN(2) == 0 {
							w.Pipeline = fmt.Sprintf("p%d", r.IntN(3))
							byHand[w.ID] = true
						}
					}
					s.workers[w.ID] = w
					ids = append(ids, w.ID)
					if debugRound == round {
						t.Logf("start %+v %v", w, w.Range)
					}
				}
				for _, line := range s.assign(t, ids...) {
					if debugRound == round {
						t.Log(line)
					}
					if strings.Contains(line, " -> ") {
						assigned++
						continue
					}
					refused++
					// A worker that can hold the whole model always has a place.
					id, _, _ := strings.Cut(line, ":")
					if w := s.workers[id]; w.Range == nil && w.MemoryBytes >= m.Bytes(Range{0, m.Layers}, s.minKV) {
						t.Fatalf("round %d: %s", round, line)
					}
				}
			case op < 8: // a worker dies
				if len(s.workers) == 0 {
					continue
				}
				ids := slices.Sorted(maps.Keys(s.workers))
				id := ids[r.IntN(len(ids))]
				if debugRound == round {
					t.Log("kill", id)
				}
				delete(s.workers, id)
			default: // workers finish loading
				for id, w := range s.workers {
					w.Ready = true
					s.workers[id] = w
				}
			}
			p, _ := s.build(t)
			if debugRound == round {
				t.Log(describe(m, p, nil))
			}
			// Workers that chose their places from one view never collide: every worker
			// that Assign placed is in the plan, unless a worker placed by hand in its
			// pipeline took its layers. A refused worker asks again, as a node would.
			var again []string
			for id, w := range s.workers {
				if _, _, ok := p.Find(id); ok || w.Pipeline == "" || byHand[id] {
					continue
				}
				if !slices.ContainsFunc(p.pipeline(w.Pipeline).Stages, func(o Stage) bool {
					return byHand[o.Worker] && o.Range.Overlaps(*w.Range)
				}) {
					t.Fatalf("round %d: worker %q placed by Assign in %s %s is not in the plan:\n%s",
						round, id, w.Pipeline, w.Range, describe(m, p, nil))
				}
				w.Pipeline = ""
				if !explicit[id] {
					w.Range = nil
				}
				s.workers[id] = w
				again = append(again, id)
			}
			slices.Sort(again)
			if debugRound == round && len(again) > 0 {
				t.Log("again", again)
			}
			s.assign(t, again...)
			p, _ = s.build(t)
			serving += len(p.Serving(m, nil))
		}
	}
	t.Logf("%d workers placed, %d refused; %d serving pipelines summed over steps", assigned, refused, serving)
	if assigned == 0 || serving == 0 {
		t.Fatalf("the random test placed %d workers and served %d pipelines: it tests nothing", assigned, serving)
	}
}

// debugRound is a round of TestRandomJoinsAndDeaths to log step by step; -1: none.
var debugRound = -1
