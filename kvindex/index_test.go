package kvindex

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kvmesh/kvmesh/blocks"
)

// key names a test key by a letter.
func key(c byte) blocks.BlockHash { return sha256.Sum256([]byte{c}) }

const letters = "abcdefgh"

// evs parses "+a -b" into events: + stored, - removed.
func evs(s string) []Event {
	var out []Event
	for _, f := range strings.Fields(s) {
		k := blocks.Stored
		if f[0] == '-' {
			k = blocks.Removed
		}
		out = append(out, Event{Kind: k, Key: key(f[1])})
	}
	return out
}

// held lists the letters whose keys node holds, per MatchNode.
func held(ix *Index, node string) string {
	var b strings.Builder
	for i := 0; i < len(letters); i++ {
		if ix.MatchNode(node, []blocks.BlockHash{key(letters[i])}) == 1 {
			b.WriteByte(letters[i])
		}
	}
	return b.String()
}

func chain(s string) []blocks.BlockHash {
	var out []blocks.BlockHash
	for i := 0; i < len(s); i++ {
		out = append(out, key(s[i]))
	}
	return out
}

// step is one line of an index script: apply a batch ("batch"), install a snapshot
// ("snap", keys in ev as "+a +b", seq in first), drop a node ("drop") or begin a resync
// ("begin"); then check the result and what each listed node holds.
type step struct {
	op    string
	node  string
	inc   uint64
	first uint64
	ev    string
	want  Result
	holds map[string]string
}

func runScript(t *testing.T, cfg IndexConfig, steps []step) *Index {
	t.Helper()
	ix, err := NewIndex(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		var got Result
		switch s.op {
		case "batch":
			got = ix.Apply(&Batch{Node: s.node, Incarnation: s.inc, First: s.first, Events: evs(s.ev)})
		case "snap":
			var keys []blocks.BlockHash
			for _, e := range evs(s.ev) {
				keys = append(keys, e.Key)
			}
			got = ix.Resync(&Snapshot{Node: s.node, Incarnation: s.inc, Seq: s.first, Keys: keys})
		case "drop":
			ix.Drop(s.node)
		case "begin":
			if !ix.BeginResync(s.node) {
				got = Ignored
			}
		default:
			t.Fatalf("step %d: op %q", i, s.op)
		}
		if s.want != 0 && got != s.want {
			t.Fatalf("step %d (%s %s inc %d first %d %q): %v, want %v", i, s.op, s.node, s.inc, s.first, s.ev, got, s.want)
		}
		for n, w := range s.holds {
			if h := held(ix, n); h != w {
				t.Fatalf("step %d: %s holds %q, want %q", i, n, h, w)
			}
		}
	}
	return ix
}

func TestIndexScripts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   IndexConfig
		steps []step
	}{
		{"in order", IndexConfig{}, []step{
			{op: "batch", node: "n1", inc: 5, first: 1, ev: "+a +b +c", want: Applied, holds: map[string]string{"n1": "abc", "n2": ""}},
			{op: "batch", node: "n1", inc: 5, first: 4, ev: "-b +d", want: Applied, holds: map[string]string{"n1": "acd"}},
			{op: "batch", node: "n2", inc: 1, first: 1, ev: "+a", want: Applied, holds: map[string]string{"n1": "acd", "n2": "a"}},
		}},
		{"duplicate and overlap", IndexConfig{}, []step{
			{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a +b", want: Applied},
			{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a +b", want: Ignored, holds: map[string]string{"n1": "ab"}},
			// 2 is old, 3 new
			{op: "batch", node: "n1", inc: 1, first: 2, ev: "-b +c", want: Applied, holds: map[string]string{"n1": "abc"}},
			{op: "batch", node: "n1", inc: 1, first: 4, want: Applied, holds: map[string]string{"n1": "abc"}}, // heartbeat in order
			{op: "batch", node: "n1", inc: 1, first: 2, want: Ignored, holds: map[string]string{"n1": "abc"}}, // stale heartbeat
		}},
		{"gap then snapshot with replay", IndexConfig{}, []step{
			{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a +b", want: Applied},
			{op: "batch", node: "n1", inc: 1, first: 4, ev: "+d", want: NeedResync, holds: map[string]string{"n1": ""}},
			{op: "batch", node: "n1", inc: 1, first: 5, ev: "-a +e", want: NeedResync, holds: map[string]string{"n1": ""}},
			// snapshot after seq 4 (state a b c d); 5 replays
			{op: "snap", node: "n1", inc: 1, first: 4, ev: "+a +b +c +d", want: Applied, holds: map[string]string{"n1": "bcde"}},
			{op: "batch", node: "n1", inc: 1, first: 7, ev: "+f", want: Applied, holds: map[string]string{"n1": "bcdef"}},
		}},
		{"snapshot leaves a gap", IndexConfig{}, []step{
			{op: "batch", node: "n1", inc: 1, first: 5, ev: "+e", want: NeedResync},
			{op: "snap", node: "n1", inc: 1, first: 3, ev: "+a", want: NeedResync, holds: map[string]string{"n1": ""}},
			{op: "snap", node: "n1", inc: 1, first: 4, ev: "+a +d", want: Applied, holds: map[string]string{"n1": "ade"}},
		}},
		{"heartbeat reveals a lost last batch", IndexConfig{}, []step{
			{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a", want: Applied},
			{op: "batch", node: "n1", inc: 1, first: 3, want: NeedResync, holds: map[string]string{"n1": ""}},
			{op: "snap", node: "n1", inc: 1, first: 2, ev: "+a +b", want: Applied, holds: map[string]string{"n1": "ab"}},
		}},
		{"late subscriber hears a heartbeat", IndexConfig{}, []step{
			{op: "batch", node: "n1", inc: 1, first: 9, want: NeedResync},
			{op: "snap", node: "n1", inc: 1, first: 8, ev: "+c", want: Applied, holds: map[string]string{"n1": "c"}},
		}},
		{"incarnations", IndexConfig{}, []step{
			{op: "batch", node: "n1", inc: 2, first: 1, ev: "+a +b", want: Applied},
			{op: "batch", node: "n1", inc: 1, first: 3, ev: "+c", want: Ignored, holds: map[string]string{"n1": "ab"}},
			{op: "snap", node: "n1", inc: 1, first: 7, ev: "+h", want: Ignored, holds: map[string]string{"n1": "ab"}},
			// restart: old entries gone at once
			{op: "batch", node: "n1", inc: 3, first: 1, ev: "+c", want: Applied, holds: map[string]string{"n1": "c"}},
			{op: "batch", node: "n1", inc: 2, first: 3, ev: "+d", want: Ignored, holds: map[string]string{"n1": "c"}},
			// a newer incarnation first heard of mid-stream needs a snapshot
			{op: "batch", node: "n1", inc: 4, first: 3, ev: "+d", want: NeedResync, holds: map[string]string{"n1": ""}},
			{op: "snap", node: "n1", inc: 4, first: 2, ev: "+b", want: Applied, holds: map[string]string{"n1": "bd"}},
		}},
		{"drop", IndexConfig{}, []step{
			{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a +b", want: Applied},
			{op: "batch", node: "n2", inc: 1, first: 1, ev: "+a", want: Applied},
			{op: "drop", node: "n1", holds: map[string]string{"n1": "", "n2": "a"}},
			// a late batch of the dropped incarnation does not bring entries back
			{op: "batch", node: "n1", inc: 1, first: 3, ev: "+c", want: NeedResync, holds: map[string]string{"n1": ""}},
			// only a snapshot (live evidence) does
			{op: "snap", node: "n1", inc: 1, first: 3, ev: "+a +b +c", want: Applied, holds: map[string]string{"n1": "abc"}},
			{op: "drop", node: "n1"},
			// a restarted node starts afresh
			{op: "batch", node: "n1", inc: 2, first: 1, ev: "+h", want: Applied, holds: map[string]string{"n1": "h"}},
			{op: "drop", node: "nobody"},
		}},
		{"snapshot older than state", IndexConfig{}, []step{
			{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a +b +c", want: Applied},
			{op: "snap", node: "n1", inc: 1, first: 2, ev: "+a +b", want: Ignored, holds: map[string]string{"n1": "abc"}},
			{op: "snap", node: "n1", inc: 1, first: 3, ev: "+a +b +c +d", want: Applied, holds: map[string]string{"n1": "abcd"}},
		}},
		{"begin resync buffers", IndexConfig{}, []step{
			{op: "begin", node: "n1"},
			{op: "batch", node: "n1", inc: 1, first: 4, ev: "+d", want: NeedResync, holds: map[string]string{"n1": ""}},
			{op: "snap", node: "n1", inc: 1, first: 3, ev: "+a +b", want: Applied, holds: map[string]string{"n1": "abd"}},
		}},
		{"begin resync, fresh publisher", IndexConfig{}, []step{
			{op: "begin", node: "n1"},
			{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a", want: Applied, holds: map[string]string{"n1": "a"}},
			{op: "snap", node: "n1", inc: 1, first: 0, want: Ignored, holds: map[string]string{"n1": "a"}},
		}},
		{"max keys per node", IndexConfig{MaxKeysPerNode: 2}, []step{
			{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a +b +c +a", want: Applied, holds: map[string]string{"n1": "ab"}},
			{op: "batch", node: "n1", inc: 1, first: 5, ev: "-a +c", want: Applied, holds: map[string]string{"n1": "bc"}},
			{op: "snap", node: "n1", inc: 2, first: 0, ev: "+d +e +f", want: Applied, holds: map[string]string{"n1": "de"}},
		}},
		{"max nodes evicts the longest resyncing", IndexConfig{MaxNodes: 2}, []step{
			{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a", want: Applied},
			{op: "batch", node: "n2", inc: 1, first: 1, ev: "+b", want: Applied},
			{op: "batch", node: "n3", inc: 1, first: 1, ev: "+c", want: Ignored, holds: map[string]string{"n3": ""}},
			{op: "drop", node: "n2"},
			{op: "batch", node: "n3", inc: 1, first: 1, ev: "+c", want: Applied, holds: map[string]string{"n1": "a", "n2": "", "n3": "c"}},
		}},
		{"pending bounded", IndexConfig{MaxPending: 2}, []step{
			{op: "batch", node: "n1", inc: 1, first: 2, ev: "+b", want: NeedResync},
			{op: "batch", node: "n1", inc: 1, first: 3, ev: "+c", want: NeedResync},
			{op: "batch", node: "n1", inc: 1, first: 4, ev: "+d", want: NeedResync}, // pushes out 2
			{op: "snap", node: "n1", inc: 1, first: 1, ev: "+a", want: NeedResync},  // 2 is gone
			{op: "snap", node: "n1", inc: 1, first: 2, ev: "+a +b", want: Applied, holds: map[string]string{"n1": "abcd"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runScript(t, tc.cfg, tc.steps) })
	}
}

func TestIndexMatch(t *testing.T) {
	ix := runScript(t, IndexConfig{}, []step{
		{op: "batch", node: "n1", inc: 1, first: 1, ev: "+a +b +c", want: Applied},
		{op: "batch", node: "n2", inc: 1, first: 1, ev: "+a +c +d", want: Applied},
		{op: "batch", node: "n3", inc: 1, first: 1, ev: "+b", want: Applied},
	})
	for _, c := range []struct {
		chain string
		want  map[string]int
	}{
		{"abcd", map[string]int{"n1": 3, "n2": 1}},
		{"acd", map[string]int{"n1": 2, "n2": 3}},
		{"ab", map[string]int{"n1": 2, "n2": 1}},
		{"b", map[string]int{"n1": 1, "n3": 1}},
		{"h", map[string]int{}},
		{"", map[string]int{}},
	} {
		if got := ix.Match(chain(c.chain)); !maps.Equal(got, c.want) {
			t.Errorf("Match(%s) = %v, want %v", c.chain, got, c.want)
		}
	}
	st := ix.Stats()
	if st.Nodes != 3 || st.Keys != 7 || st.Applied != 7 {
		t.Errorf("stats %+v", st)
	}
	if ns := ix.Nodes(); len(ns) != 3 || ns[0].Node != "n1" || ns[0].Next != 4 || ns[0].Keys != 3 {
		t.Errorf("nodes %+v", ns)
	}
}

func TestIndexConfig(t *testing.T) {
	if _, err := NewIndex(IndexConfig{MaxNodes: -1}); err == nil {
		t.Error("negative MaxNodes accepted")
	}
	if _, err := NewIndex(IndexConfig{QueueWeight: -1}); err == nil {
		t.Error("negative QueueWeight accepted")
	}
}

// pubModel is one publisher in the randomized test: its true cache and the cache after
// each sequence number of its current incarnation.
type pubModel struct {
	node    string
	inc     uint64
	seq     uint64
	state   map[blocks.BlockHash]bool
	history []map[blocks.BlockHash]bool // history[s]: state after sequence number s
	unsent  []Event                     // taken from the cache, not yet published
}

func (p *pubModel) restart() {
	p.inc++
	p.seq = 0
	p.state = map[blocks.BlockHash]bool{}
	p.history = []map[blocks.BlockHash]bool{{}}
	p.unsent = nil
}

// TestIndexRandom drives an Index with random publishers whose batches are lost,
// duplicated, reordered and outlived by restarts, and compares it with a naive model:
// whenever the index says it has applied a node up to sequence s and is not awaiting a
// snapshot, it holds exactly the node's cache after s, and Match agrees with a naive
// count of leading keys.
func TestIndexRandom(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomIndexRun(t, seed) })
	}
}

func randomIndexRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	ix, err := NewIndex(IndexConfig{MaxPending: 8})
	if err != nil {
		t.Fatal(err)
	}
	universe := make([]blocks.BlockHash, 12)
	for i := range universe {
		universe[i] = key(byte('A' + i))
	}
	pubs := make([]*pubModel, 3)
	for i := range pubs {
		pubs[i] = &pubModel{node: fmt.Sprintf("n%d", i)}
		pubs[i].restart()
	}
	var inflight []Batch
	checked := 0
	needs := map[string]bool{}
	deliver := func(b Batch) {
		if r := ix.Apply(&b); r == NeedResync {
			needs[b.Node] = true
		}
	}
	for step := range 3000 {
		p := pubs[rng.IntN(len(pubs))]
		switch op := rng.IntN(100); {
		case op < 40: // take events from the cache
			for range 1 + rng.IntN(3) {
				k := universe[rng.IntN(len(universe))]
				e := Event{Kind: blocks.Stored, Key: k}
				if p.state[k] {
					e.Kind = blocks.Removed
				}
				p.state[k] = e.Kind == blocks.Stored
				if !p.state[k] {
					delete(p.state, k)
				}
				p.unsent = append(p.unsent, e)
			}
		case op < 65: // publish what was taken
			if len(p.unsent) == 0 {
				continue
			}
			b := Batch{Node: p.node, Incarnation: p.inc, First: p.seq + 1, Events: p.unsent}
			p.unsent = nil
			// record the history of every sequence number
			cur := maps.Clone(p.history[len(p.history)-1])
			for _, e := range b.Events {
				if e.Kind == blocks.Stored {
					cur[e.Key] = true
				} else {
					delete(cur, e.Key)
				}
				p.history = append(p.history, maps.Clone(cur))
			}
			p.seq = b.End() - 1
			switch r := rng.IntN(10); {
			case r < 6:
				deliver(b)
			case r < 9:
				inflight = append(inflight, b) // delayed, maybe reordered
			default: // lost
			}
		case op < 75: // deliver a delayed batch, possibly twice
			if len(inflight) == 0 {
				continue
			}
			i := rng.IntN(len(inflight))
			deliver(inflight[i])
			if rng.IntN(4) != 0 {
				inflight = slices.Delete(inflight, i, i+1)
			}
		case op < 80: // heartbeat
			deliver(Batch{Node: p.node, Incarnation: p.inc, First: p.seq + 1})
		case op < 90: // answer a needed snapshot; the state may run ahead of Seq
			if !needs[p.node] {
				continue
			}
			keys := slices.Collect(maps.Keys(p.state))
			if ix.Resync(&Snapshot{Node: p.node, Incarnation: p.inc, Seq: p.seq, Keys: keys}) != NeedResync {
				delete(needs, p.node)
			}
		case op < 93: // restart
			p.restart()
		case op < 96: // membership drops the node
			ix.Drop(p.node)
			needs[p.node] = true
		default: // begin a resync as on start
			ix.BeginResync(p.node)
			needs[p.node] = true
		}
		checked += checkAgainstModel(t, step, ix, pubs, universe, rng)
	}
	st := ix.Stats()
	if checked < 500 || st.Gaps == 0 || st.Resyncs == 0 || st.Ignored == 0 {
		t.Errorf("weak run: %d caught-up states checked, stats %+v", checked, st)
	}
	t.Logf("%d caught-up states checked, stats %+v", checked, st)
}

// checkAgainstModel returns the number of nodes it compared in full.
func checkAgainstModel(t *testing.T, step int, ix *Index, pubs []*pubModel, universe []blocks.BlockHash, rng *rand.Rand) (checked int) {
	t.Helper()
	states := map[string]NodeState{}
	for _, n := range ix.Nodes() {
		states[n.Node] = n
	}
	for _, p := range pubs {
		ns, ok := states[p.node]
		if !ok {
			continue
		}
		if ns.Resyncing {
			if n := ix.MatchNode(p.node, universe[:1]); n != 0 || ns.Keys != 0 {
				t.Fatalf("step %d: %s awaits a snapshot but holds %d keys", step, p.node, ns.Keys)
			}
			continue
		}
		if ns.Incarnation != p.inc || ns.Next-1 > p.seq {
			continue // an older incarnation the index has not yet seen replaced, or ahead of publishing
		}
		if len(p.unsent) > 0 || ns.Next-1 != p.seq {
			// Behind, or a snapshot ran ahead of Seq: the entries may differ from the
			// history until the rest is published. Only check when caught up.
			continue
		}
		checked++
		want := p.history[ns.Next-1]
		if ns.Keys != len(want) {
			t.Fatalf("step %d: %s holds %d keys, model %d", step, p.node, ns.Keys, len(want))
		}
		for _, k := range universe {
			if got := ix.MatchNode(p.node, []blocks.BlockHash{k}) == 1; got != want[k] {
				t.Fatalf("step %d: %s holds %x: %v, model %v", step, p.node, k[:4], got, want[k])
			}
		}
		// Match against a naive count of leading keys.
		for range 3 {
			ks := make([]blocks.BlockHash, rng.IntN(5))
			for i := range ks {
				ks[i] = universe[rng.IntN(len(universe))]
			}
			naive := 0
			for naive < len(ks) && want[ks[naive]] {
				naive++
			}
			if got := ix.MatchNode(p.node, ks); got != naive {
				t.Fatalf("step %d: MatchNode = %d, naive %d", step, got, naive)
			}
			if m := ix.Match(ks); m[p.node] != naive {
				t.Fatalf("step %d: Match = %d, naive %d", step, m[p.node], naive)
			}
		}
	}
	return checked
}

// BenchmarkIndexMemory measures the heap one held key costs (doc.go, Memory), over 1<<20
// keys of one node.
func BenchmarkIndexMemory(b *testing.B) {
	const n = 1 << 20
	keys := Keys(Seed("m", "t", 1), make([]int, n), 1)
	batch := Batch{Node: "n", Incarnation: 1, First: 1, Events: make([]Event, n)}
	for i, k := range keys {
		batch.Events[i] = Event{Kind: blocks.Stored, Key: k}
	}
	keys = nil
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ix, _ := NewIndex(IndexConfig{})
		ix.Apply(&batch)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/key")
		runtime.KeepAlive(ix)
	}
}

func BenchmarkApply(b *testing.B) {
	keys := Keys(Seed("m", "t", 1), make([]int, 1<<16), 1)
	ix, _ := NewIndex(IndexConfig{})
	batch := Batch{Node: "n", Incarnation: 1, First: 1, Events: make([]Event, 64)}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		for j := range batch.Events {
			kind := blocks.Stored
			if (i/len(keys))%2 == 1 {
				kind = blocks.Removed
			}
			batch.Events[j] = Event{Kind: kind, Key: keys[i%len(keys)]}
			i++
		}
		ix.Apply(&batch)
		batch.First += uint64(len(batch.Events))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/event")
}

// FuzzIndexOps applies arbitrary operations (batches with any numbering, snapshots,
// drops) and checks that the index never panics and keeps its invariants: a node
// awaiting a snapshot holds nothing, no node exceeds its bounds, buffered events are
// counted right, and Match agrees with MatchNode.
func FuzzIndexOps(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 3, 0, 0, 1, 4, 2, 1, 0, 1, 9, 1, 2, 0, 1, 3, 0})
	f.Add([]byte{1, 1, 2, 0, 0, 3, 1, 4, 0, 5, 2, 1, 1, 255, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := IndexConfig{MaxNodes: 2, MaxKeysPerNode: 3, MaxPending: 4}
		ix, err := NewIndex(cfg)
		if err != nil {
			t.Fatal(err)
		}
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		for len(data) > 0 {
			op, node := next()%4, fmt.Sprint("n", next()%3)
			inc, first := uint64(next()%3), uint64(next())
			if first == 255 {
				first = ^uint64(0)
			}
			n := int(next() % 5)
			switch op {
			case 0:
				b := Batch{Node: node, Incarnation: inc, First: first}
				for range n {
					e := Event{Kind: blocks.EventKind(1 + next()%2), Key: key(letters[next()%8])}
					b.Events = append(b.Events, e)
				}
				ix.Apply(&b)
			case 1:
				s := Snapshot{Node: node, Incarnation: inc, Seq: first}
				for range n {
					s.Keys = append(s.Keys, key(letters[next()%8]))
				}
				ix.Resync(&s)
			case 2:
				ix.Drop(node)
			case 3:
				ix.BeginResync(node)
			}
			if len(ix.nodes) > cfg.MaxNodes {
				t.Fatalf("%d nodes", len(ix.nodes))
			}
			for name, st := range ix.nodes {
				pending := 0
				for _, b := range st.pending {
					pending += len(b.Events)
				}
				switch {
				case st.resync && len(st.keys) > 0:
					t.Fatalf("%s awaits a snapshot with %d keys", name, len(st.keys))
				case !st.resync && len(st.pending) > 0:
					t.Fatalf("%s buffers batches while not awaiting a snapshot", name)
				case len(st.keys) > cfg.MaxKeysPerNode, pending != st.pendingEvents, pending > cfg.MaxPending:
					t.Fatalf("%s: %d keys, %d buffered events (counted %d)", name, len(st.keys), pending, st.pendingEvents)
				}
			}
			ks := chain(letters[:1+int(first%8)])
			for name, c := range ix.Match(ks) {
				if ix.MatchNode(name, ks) != c {
					t.Fatal("Match and MatchNode disagree")
				}
			}
		}
	})
}
