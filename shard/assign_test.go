package shard

import (
	"errors"
	"slices"
	"testing"
)

// TestAssign: the placement cases of the package doc, each a view and the workers that
// then ask, one after another (each seeing the places of those before it).
func TestAssign(t *testing.T) {
	five := Model{Layers: 5, LayerBytes: 100, EmbedBytes: 50, HeadBytes: 50}
	twelve := Model{Layers: 12, LayerBytes: 100}
	type want struct {
		r   Range
		pl  string
		err error
	}
	for _, tc := range []struct {
		name  string
		m     Model
		minKV int
		view  []Worker // already in the view before the askers
		ask   []Worker
		want  []want
	}{
		{
			name: "equal workers, explicit ranges: two pipelines of two stages",
			m:    five,
			ask: []Worker{{ID: "a", MemoryBytes: 400, Range: rng(Range{0, 2})}, {ID: "b", MemoryBytes: 400, Range: rng(Range{2, 5})},
				{ID: "c", MemoryBytes: 400, Range: rng(Range{0, 2})}, {ID: "d", MemoryBytes: 400, Range: rng(Range{2, 5})}},
			want: []want{{Range{0, 2}, "p0", nil}, {Range{2, 5}, "p0", nil}, {Range{0, 2}, "p1", nil}, {Range{2, 5}, "p1", nil}},
		},
		{
			name: "equal workers, explicit ranges: one pipeline of four stages",
			m:    five,
			ask: []Worker{{ID: "a", MemoryBytes: 400, Range: rng(Range{0, 1})}, {ID: "b", MemoryBytes: 400, Range: rng(Range{1, 2})},
				{ID: "c", MemoryBytes: 400, Range: rng(Range{2, 3})}, {ID: "d", MemoryBytes: 400, Range: rng(Range{3, 5})}},
			want: []want{{Range{0, 1}, "p0", nil}, {Range{1, 2}, "p0", nil}, {Range{2, 3}, "p0", nil}, {Range{3, 5}, "p0", nil}},
		},
		{
			name: "equal workers without ranges: 3 and 2 layers, twice",
			m:    five,
			ask: []Worker{{ID: "a", MemoryBytes: 400}, {ID: "b", MemoryBytes: 400},
				{ID: "c", MemoryBytes: 400}, {ID: "d", MemoryBytes: 400}},
			want: []want{{Range{0, 3}, "p0", nil}, {Range{3, 5}, "p0", nil}, {Range{0, 3}, "p1", nil}, {Range{3, 5}, "p1", nil}},
		},
		{
			name: "a dead worker's gap is the next worker's range",
			m:    five,
			view: []Worker{{ID: "a", Range: rng(Range{0, 2}), Pipeline: "p0", Ready: true},
				{ID: "c", Range: rng(Range{3, 5}), Pipeline: "p0", Ready: true}},
			ask:  []Worker{{ID: "n", MemoryBytes: 1 << 20}},
			want: []want{{Range{2, 3}, "p0", nil}},
		},
		{
			name: "heterogeneous memory waiting together: proportional ranges",
			m:    twelve,
			view: []Worker{{ID: "a", Range: rng(Range{0, 3}), Pipeline: "p0", MemoryBytes: 300},
				{ID: "c", MemoryBytes: 300}, {ID: "b", MemoryBytes: 600}},
			ask:  []Worker{{ID: "b", MemoryBytes: 600}, {ID: "c", MemoryBytes: 300}},
			want: []want{{Range{3, 9}, "p0", nil}, {Range{9, 12}, "p0", nil}},
		},
		{
			name: "heterogeneous memory one at a time: a share as if workers like it follow",
			m:    twelve,
			view: []Worker{{ID: "a", Range: rng(Range{0, 3}), Pipeline: "p0", MemoryBytes: 300}},
			ask:  []Worker{{ID: "b", MemoryBytes: 600}, {ID: "c", MemoryBytes: 300}, {ID: "d", MemoryBytes: 300}},
			want: []want{{Range{3, 8}, "p0", nil}, {Range{8, 10}, "p0", nil}, {Range{10, 12}, "p0", nil}},
		},
		{
			// A layer with the KV of 20 tokens takes 120 bytes; the embedding and the
			// classifier 300 each. a (1500) and b (900) split 8 layers in proportion to
			// 1200:600 (their memory less embedding and classifier), 5 and 3; c (600)
			// holds 2 layers with the embedding and starts a second pipeline.
			name:  "unequal workers waiting together, with embedding, classifier and KV",
			m:     Model{Layers: 8, LayerBytes: 100, EmbedBytes: 300, HeadBytes: 300, KVBytesPerToken: 1},
			minKV: 20,
			view:  []Worker{{ID: "a", MemoryBytes: 1500}, {ID: "b", MemoryBytes: 900}, {ID: "c", MemoryBytes: 600}},
			ask:   []Worker{{ID: "a", MemoryBytes: 1500}, {ID: "b", MemoryBytes: 900}, {ID: "c", MemoryBytes: 600}},
			want:  []want{{Range{0, 5}, "p0", nil}, {Range{5, 8}, "p0", nil}, {Range{0, 2}, "p1", nil}},
		},
		{
			// a (600) alone takes 2 layers, its share if workers like it follow; b (1500)
			// fills the 6 left; c (900) starts p1 with 4, half as one like it would.
			name:  "unequal workers one at a time, with embedding, classifier and KV",
			m:     Model{Layers: 8, LayerBytes: 100, EmbedBytes: 300, HeadBytes: 300, KVBytesPerToken: 1},
			minKV: 20,
			ask:   []Worker{{ID: "a", MemoryBytes: 600}, {ID: "b", MemoryBytes: 1500}, {ID: "c", MemoryBytes: 900}},
			want:  []want{{Range{0, 2}, "p0", nil}, {Range{2, 8}, "p0", nil}, {Range{0, 4}, "p1", nil}},
		},
		{
			name:  "too small for one layer",
			m:     five,
			minKV: 10,
			ask:   []Worker{{ID: "t", MemoryBytes: 99}, {ID: "u", MemoryBytes: 0}},
			want:  []want{{err: ErrNoFit}, {err: ErrNoFit}},
		},
		{
			name:  "explicit range without room for the KV",
			m:     Model{Layers: 5, LayerBytes: 100, EmbedBytes: 50, HeadBytes: 50, KVBytesPerToken: 1},
			minKV: 10,
			ask:   []Worker{{ID: "a", MemoryBytes: 250, Range: rng(Range{0, 2})}, {ID: "b", MemoryBytes: 270, Range: rng(Range{0, 2})}},
			want:  []want{{err: ErrNoFit}, {Range{0, 2}, "p0", nil}},
		},
		{
			name: "explicit range overlapping its pipeline",
			m:    five,
			view: []Worker{{ID: "a", Range: rng(Range{0, 3}), Pipeline: "p0"}},
			ask:  []Worker{{ID: "b", Range: rng(Range{2, 5}), Pipeline: "p0"}, {ID: "c", Range: rng(Range{2, 5})}},
			want: []want{{err: ErrOverlap}, {Range{2, 5}, "p1", nil}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			view := slices.Clone(tc.view)
			for i, w := range tc.ask {
				p, errs := Build(tc.m, view)
				if len(errs) > 0 {
					t.Fatal(errs)
				}
				r, pl, err := p.Assign(tc.m, w, tc.minKV)
				if got := (want{r, pl, err}); !errors.Is(err, tc.want[i].err) || (err == nil && got != tc.want[i]) {
					t.Fatalf("Assign(%s) = %v %q %v, want %v %q %v", w.ID, r, pl, err, tc.want[i].r, tc.want[i].pl, tc.want[i].err)
				}
				if err == nil {
					checkAssigned(t, tc.m, p, w, r, pl, tc.minKV)
					w.Range, w.Pipeline = &r, pl
					view = slices.DeleteFunc(view, func(x Worker) bool { return x.ID == w.ID })
					view = append(view, w)
				}
			}
		})
	}
}
