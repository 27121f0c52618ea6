package shard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// sim is a cluster's membership view for tests: the live workers by ID, and the model.
type sim struct {
	m       Model
	minKV   int
	workers map[string]Worker
}

func newSim(m Model, minKV int) *sim {
	return &sim{m: m, minKV: minKV, workers: map[string]Worker{}}
}

// view is the live workers, in an order that Build must not depend on (reverse ID).
func (s *sim) view() []Worker {
	ws := make([]Worker, 0, len(s.workers))
	for _, w := range s.workers {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b Worker) int { return strings.Compare(b.ID, a.ID) })
	return ws
}

// build is Build of the view, with the plan's invariants checked.
func (s *sim) build(t testing.TB) (Plan, []error) {
	t.Helper()
	p, errs := Build(s.m, s.view())
	checkPlan(t, s.m, p)
	return p, errs
}

// assign lets each of the named workers ask Assign on the same view (as if they started
// at the same time), then records their places. It returns one line per worker.
func (s *sim) assign(t testing.TB, ids ...string) []string {
	t.Helper()
	p, _ := s.build(t)
	var out []string
	type placed struct {
		id string
		r  Range
		pl string
	}
	var got []placed
	for _, id := range ids {
		w, ok := s.workers[id]
		if !ok {
			t.Fatalf("assign: no worker %q", id)
		}
		r, pl, err := p.Assign(s.m, w, s.minKV)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		checkAssigned(t, s.m, p, w, r, pl, s.minKV)
		out = append(out, fmt.Sprintf("%s -> %s %s", id, pl, r))
		got = append(got, placed{id, r, pl})
	}
	for _, g := range got {
		w := s.workers[g.id]
		r := g.r
		w.Range, w.Pipeline = &r, g.pl
		s.workers[g.id] = w
	}
	return out
}

// checkPlan fails t unless p keeps Build's invariants.
func checkPlan(t testing.TB, m Model, p Plan) {
	t.Helper()
	seen := map[string]bool{}
	for i, pl := range p.Pipelines {
		if i > 0 && p.Pipelines[i-1].ID >= pl.ID {
			t.Fatalf("pipelines not sorted by ID: %q before %q", p.Pipelines[i-1].ID, pl.ID)
		}
		if len(pl.Stages) == 0 {
			t.Fatalf("pipeline %q has no stages", pl.ID)
		}
		for j, st := range pl.Stages {
			if err := st.Range.within(m); err != nil {
				t.Fatalf("pipeline %q: stage %q: %v", pl.ID, st.Worker, err)
			}
			if j > 0 && pl.Stages[j-1].Range.Last > st.Range.First {
				t.Fatalf("pipeline %q: stages %q %s and %q %s overlap or are out of order",
					pl.ID, pl.Stages[j-1].Worker, pl.Stages[j-1].Range, st.Worker, st.Range)
			}
			if seen[st.Worker] {
				t.Fatalf("worker %q placed twice", st.Worker)
			}
			seen[st.Worker] = true
		}
	}
	for _, w := range p.Waiting {
		if seen[w.ID] {
			t.Fatalf("worker %q both placed and waiting", w.ID)
		}
		seen[w.ID] = true
	}
}

// checkAssigned fails t unless range r in pipeline pl, Assign's answer for w on plan p,
// is inside the model, overlaps no stage of pl in p, passes Check and fits w's memory.
func checkAssigned(t testing.TB, m Model, p Plan, w Worker, r Range, pl string, minKV int) {
	t.Helper()
	if err := r.within(m); err != nil {
		t.Fatalf("Assign(%q) = %s: %v", w.ID, r, err)
	}
	if _, _, placed := p.Find(w.ID); placed {
		return
	}
	if o, ok := p.pipeline(pl).overlapping(r, w.ID); ok {
		t.Fatalf("Assign(%q) = %s %s overlaps stage %q %s", w.ID, pl, r, o.Worker, o.Range)
	}
	w2 := w
	w2.Range, w2.Pipeline = &r, pl
	if err := Check(m, p, w2); err != nil {
		t.Fatalf("Assign(%q) = %s %s, which Check refuses: %v", w.ID, pl, r, err)
	}
	if w.Range == nil && m.Bytes(r, minKV) > w.MemoryBytes {
		t.Fatalf("Assign(%q) = %s needs %d bytes, worker offers %d", w.ID, r, m.Bytes(r, minKV), w.MemoryBytes)
	}
}

// describe prints a plan: one line per pipeline, then the waiting workers and errors.
func describe(m Model, p Plan, errs []error) string {
	var b strings.Builder
	for _, pl := range p.Pipelines {
		fmt.Fprintf(&b, "%s:", pl.ID)
		for i, st := range pl.Stages {
			sep := ","
			if i == 0 {
				sep = ""
			}
			state := "loading"
			if st.Ready {
				state = "ready"
			}
			fmt.Fprintf(&b, "%s %s %s %s", sep, st.Worker, st.Range, state)
		}
		switch gaps := pl.Gaps(m); {
		case len(gaps) > 0:
			fmt.Fprintf(&b, "; missing")
			for _, g := range gaps {
				fmt.Fprintf(&b, " %s", g)
			}
		case pl.Complete(m, nil):
			fmt.Fprintf(&b, "; serving")
		default:
			fmt.Fprintf(&b, "; complete, not ready")
		}
		b.WriteString("\n")
	}
	if len(p.Waiting) > 0 {
		b.WriteString("waiting:")
		for _, w := range p.Waiting {
			fmt.Fprintf(&b, " %s", w.ID)
		}
		b.WriteString("\n")
	}
	for _, err := range errs {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	if b.Len() == 0 {
		return "empty\n"
	}
	return b.String()
}

// errName is the sentinel an error wraps, for short test output.
func errName(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{{ErrRange, "ErrRange"}, {ErrOverlap, "ErrOverlap"}, {ErrNoFit, "ErrNoFit"}, {ErrBadWorker, "ErrBadWorker"}} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	if err == nil {
		return "nil"
	}
	return "other"
}
