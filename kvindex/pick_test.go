package kvindex

import (
	"fmt"
	"testing"

	"github.com/kvmesh/kvmesh/blocks"
)

// pickIndex holds, for node "p<k>", the first k of 16 chained keys.
func pickIndex(t *testing.T, prefixes map[string]int) (*Index, []blocks.BlockHash) {
	t.Helper()
	ix, err := NewIndex(IndexConfig{})
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys(Seed("m", "t", 4), make([]int, 64), 4) // 16 keys
	for node, k := range prefixes {
		b := Batch{Node: node, Incarnation: 1, First: 1}
		for _, key := range keys[:k] {
			b.Events = append(b.Events, Event{Kind: blocks.Stored, Key: key})
		}
		if r := ix.Apply(&b); r != Applied {
			t.Fatalf("apply: %v", r)
		}
	}
	return ix, keys
}

func TestPick(t *testing.T) {
	ix, keys := pickIndex(t, map[string]int{"a": 0, "b": 4, "c": 12, "d": 12, "e": 16})
	const free = 1000
	for _, tc := range []struct {
		name        string
		cands       []Candidate
		want        string
		wantMatched int
	}{
		{"longest prefix wins among equally loaded",
			[]Candidate{{"a", 1, free}, {"b", 1, free}, {"c", 1, free}}, "c", 12},
		{"full prefix",
			[]Candidate{{"e", 0, free}, {"c", 0, free}}, "e", 16},
		{"a much more loaded node loses a small prefix advantage",
			[]Candidate{{"b", 10, free}, {"a", 0, free}}, "a", 0},
		{"a large prefix outweighs a little load",
			[]Candidate{{"c", 2, free}, {"a", 0, free}}, "c", 12},
		{"ties go to the smaller node ID, whatever the order",
			[]Candidate{{"d", 3, free}, {"c", 3, free}}, "c", 12},
		{"ties go to the smaller node ID (reversed)",
			[]Candidate{{"c", 3, free}, {"d", 3, free}}, "c", 12},
		{"equal cost: the longer prefix wins",
			// b: 12 + 2·0 = 12; c: 4 + 2·4 = 12
			[]Candidate{{"b", 0, free}, {"c", 4, free}}, "c", 12},
		{"a short node loses",
			// a: 16 + 2·0 + 16 short = 32; b: 12 + 2·5 = 22 (without the shortage a's 16 would win)
			[]Candidate{{"a", 0, 0}, {"b", 5, free}}, "b", 4},
		{"a short node with the prefix still wins",
			// c: 4 + 0 + (4 − 1) = 7; b: 12
			[]Candidate{{"b", 0, free}, {"c", 0, 1}}, "c", 12},
		{"unknown node counts as no prefix",
			[]Candidate{{"zz", 0, free}, {"b", 0, free}}, "b", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, m := ix.Pick(tc.cands, keys)
			if i < 0 || tc.cands[i].Node != tc.want || m != tc.wantMatched {
				got := "none"
				if i >= 0 {
					got = tc.cands[i].Node
				}
				t.Errorf("picked %s with %d blocks, want %s with %d", got, m, tc.want, tc.wantMatched)
			}
		})
	}
	if i, m := ix.Pick(nil, keys); i != -1 || m != 0 {
		t.Errorf("no candidates: %d %d", i, m)
	}
	// No keys (a prompt shorter than a block): load alone decides.
	if i, _ := ix.Pick([]Candidate{{"e", 3, free}, {"a", 1, free}}, nil); i != 1 {
		t.Errorf("no keys: picked %d", i)
	}
}

// TestPickLoadTradeoff sweeps the queue of the node with the longer prefix: it wins while
// its extra queue is worth less than its extra cached blocks (QueueWeight 2 blocks per
// request), and loses after.
func TestPickLoadTradeoff(t *testing.T) {
	ix, keys := pickIndex(t, map[string]int{"a": 0, "c": 12})
	for q := 0; q <= 10; q++ {
		i, _ := ix.Pick([]Candidate{{"a", 0, 1000}, {"c", q, 1000}}, keys)
		want := "c" // cost 4 + 2q against a's 16; at equality the longer prefix wins
		if 4+2*q > 16 {
			want = "a"
		}
		if got := []string{"a", "c"}[i]; got != want {
			t.Errorf("queue %d: picked %s, want %s", q, got, want)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	ix, _ := NewIndex(IndexConfig{})
	keys := Keys(Seed("m", "t", 16), make([]int, 2048), 16) // 128 keys
	var cands []Candidate
	for n := range 16 {
		node := fmt.Sprintf("leader-%d", n)
		bt := Batch{Node: node, Incarnation: 1, First: 1}
		for _, k := range keys[:n*8] {
			bt.Events = append(bt.Events, Event{Kind: blocks.Stored, Key: k})
		}
		ix.Apply(&bt)
		cands = append(cands, Candidate{Node: node, QueueDepth: n % 3, FreeBlocks: 1000})
	}
	b.ReportAllocs()
	for b.Loop() {
		ix.Pick(cands, keys)
	}
}
