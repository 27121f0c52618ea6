package kvindex

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/kvmesh/kvmesh/blocks"
)

// IndexConfig bounds an Index and weighs its Pick. Zero fields take the defaults.
type IndexConfig struct {
	// MaxNodes is the number of publishers tracked at once. Default 256. A message from
	// one more node evicts the node that has awaited a snapshot longest (dropped nodes
	// await one for ever), if any; else it is ignored.
	MaxNodes int
	// MaxKeysPerNode bounds the keys held for one node. Default 1<<20 (a worker's pool
	// rarely holds more blocks). A Stored beyond it is ignored (counted in Stats): the
	// index then under-reports that node's cache, which costs hits, never correctness.
	MaxKeysPerNode int
	// MaxPending is the number of events buffered per node while it awaits a snapshot.
	// Default 1<<16. On overflow the oldest buffered batches are dropped; if the
	// snapshot does not cover them the node asks for another.
	MaxPending int
	// QueueWeight is what one request in a node's queue costs in Pick, in blocks of
	// prompt to prefill. Default 2.
	QueueWeight float64
	// ShortageWeight is what each block a node lacks to hold the uncached part of the
	// prompt costs in Pick, in blocks of prompt to prefill. Default 1.
	ShortageWeight float64
}

func (c IndexConfig) withDefaults() (IndexConfig, error) {
	if c.MaxNodes == 0 {
		c.MaxNodes = 256
	}
	if c.MaxKeysPerNode == 0 {
		c.MaxKeysPerNode = 1 << 20
	}
	if c.MaxPending == 0 {
		c.MaxPending = 1 << 16
	}
	if c.QueueWeight == 0 {
		c.QueueWeight = 2
	}
	if c.ShortageWeight == 0 {
		c.ShortageWeight = 1
	}
	if c.MaxNodes < 0 || c.MaxKeysPerNode < 0 || c.MaxPending < 0 || c.QueueWeight < 0 || c.ShortageWeight < 0 {
		return c, fmt.Errorf("%w: negative index bound or weight: %+v", ErrBadConfig, c)
	}
	return c, nil
}

// Result says what Apply or Resync did.
type Result uint8

const (
	// Applied: the index now reflects the message.
	Applied Result = iota + 1
	// Ignored: the message was stale (an older incarnation, sequence numbers already
	// applied, a snapshot older than the state held) or did not fit the bounds.
	Ignored
	// NeedResync: the node's sequence has a gap, or it was dropped or is awaiting a
	// snapshot: its entries are gone and the caller should fetch a snapshot (Resync).
	NeedResync
)

func (r Result) String() string {
	switch r {
	case Applied:
		return "applied"
	case Ignored:
		return "ignored"
	case NeedResync:
		return "need-resync"
	}
	return "Result(?)"
}

// shortKey is the part of a key the index keeps: its first 8 bytes. See doc.go, Memory.
type shortKey uint64

func short(k *blocks.BlockHash) shortKey { return shortKey(binary.LittleEndian.Uint64(k[:8])) }

// nodeState is what the index knows of one publisher.
type nodeState struct {
	inc  uint64                // incarnation of the entries
	next uint64                // next sequence number to apply
	keys map[shortKey]struct{} // keys held; empty while resyncing
	// resync: entries are unknown (gap, drop, or a requested snapshot); batches are
	// buffered in pending until Resync.
	resync        bool
	since         uint64  // while resync: when it began (Index.stamp), for eviction
	pending       []Batch // (copies) batches of inc received while resyncing, in arrival order
	pendingEvents int
}

// Index is the router's prefix index: for every publisher (a pipeline leader), the set of
// block keys its prefix cache holds, kept from event batches and snapshots. It is a pure
// data structure (no IO, no clock, no goroutines) and not safe for concurrent use; the
// Subscriber serialises access to its Index. See doc.go for the rules.
type Index struct {
	cfg   IndexConfig
	nodes map[string]*nodeState
	stamp uint64 // counts entries into resync, to evict the longest-waiting node
	stats Stats
}

// Stats counts what the index did, for logs and metrics.
type Stats struct {
	Nodes        int    // publishers tracked
	Keys         int    // keys held over all nodes
	Resyncing    int    // nodes awaiting a snapshot
	Applied      uint64 // events applied
	Ignored      uint64 // messages ignored as stale or beyond MaxNodes
	Gaps         uint64 // gaps detected
	Resyncs      uint64 // snapshots installed
	OverKeys     uint64 // Stored events dropped by MaxKeysPerNode
	DroppedNodes uint64 // Drop calls that removed entries
}

// NewIndex returns an empty index.
func NewIndex(cfg IndexConfig) (*Index, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Index{cfg: cfg, nodes: make(map[string]*nodeState)}, nil
}

// state returns node's state, creating it (with incarnation inc, nothing applied) if the
// bounds allow; nil if they do not.
func (ix *Index) state(node string, inc uint64) *nodeState {
	if st := ix.nodes[node]; st != nil {
		return st
	}
	if len(ix.nodes) >= ix.cfg.MaxNodes && !ix.evictResyncing() {
		return nil
	}
	st := &nodeState{inc: inc, next: 1, keys: make(map[shortKey]struct{})}
	ix.nodes[node] = st
	return st
}

// admit returns the state of node for a message of incarnation inc: reset if inc is
// newer than the entries, nil (counted as ignored) if older or beyond MaxNodes.
func (ix *Index) admit(node string, inc uint64) *nodeState {
	st := ix.state(node, inc)
	switch {
	case st == nil || inc < st.inc:
		ix.stats.Ignored++
		return nil
	case inc > st.inc:
		st.reset(inc)
	}
	return st
}

// evictResyncing forgets the node that has awaited a snapshot longest (its entries are
// unknown anyway); false if no node awaits one. O(nodes), only when MaxNodes is reached.
func (ix *Index) evictResyncing() bool {
	var victim string
	var best uint64
	for n, st := range ix.nodes {
		if st.resync && (best == 0 || st.since < best) {
			victim, best = n, st.since
		}
	}
	if best == 0 {
		return false
	}
	delete(ix.nodes, victim)
	return true
}

// reset forgets st's entries and starts incarnation inc from sequence number 1.
func (st *nodeState) reset(inc uint64) {
	clear(st.keys)
	st.inc, st.next = inc, 1
	st.resync = false
	st.pending, st.pendingEvents = nil, 0
}

// enterResync forgets st's entries: they are unknown until a snapshot arrives.
func (ix *Index) enterResync(st *nodeState) {
	clear(st.keys)
	st.resync = true
	ix.stamp++
	st.since = ix.stamp
}

// Apply applies an event batch. Batches of one incarnation apply in sequence order;
// a batch whose first sequence number is past the next expected one is a gap: the
// node's entries are dropped at once and NeedResync returned (the batch is kept and
// replayed after the snapshot). A batch of a newer incarnation drops the older entries
// first; one of an older incarnation is Ignored. Apply does not keep b.
func (ix *Index) Apply(b *Batch) Result {
	st := ix.admit(b.Node, b.Incarnation)
	if st == nil {
		return Ignored
	}
	if st.resync {
		ix.bufferLocked(st, b)
		return NeedResync
	}
	if b.First > st.next {
		ix.stats.Gaps++
		ix.enterResync(st)
		ix.bufferLocked(st, b)
		return NeedResync
	}
	if b.End() < st.next || (b.End() == st.next && len(b.Events) > 0) {
		ix.stats.Ignored++
		return Ignored
	}
	ix.applyEvents(st, b)
	return Applied
}

// applyEvents applies the events of b from st.next on; b.First <= st.next.
func (ix *Index) applyEvents(st *nodeState, b *Batch) {
	for _, e := range b.Events[st.next-b.First:] {
		k := short(&e.Key)
		switch e.Kind {
		case blocks.Stored:
			if len(st.keys) >= ix.cfg.MaxKeysPerNode {
				if _, ok := st.keys[k]; !ok {
					ix.stats.OverKeys++
					continue
				}
			}
			st.keys[k] = struct{}{}
		case blocks.Removed:
			delete(st.keys, k)
		}
		ix.stats.Applied++
	}
	if b.End() > st.next {
		st.next = b.End()
	}
}

// bufferLocked keeps a copy of b for replay after the next snapshot, dropping the oldest
// buffered batches beyond MaxPending events. ("Locked": st is in resync.)
func (ix *Index) bufferLocked(st *nodeState, b *Batch) {
	if len(b.Events) > ix.cfg.MaxPending {
		return // the snapshot must cover it
	}
	for len(st.pending) > 0 && st.pendingEvents+len(b.Events) > ix.cfg.MaxPending {
		st.pendingEvents -= len(st.pending[0].Events)
		st.pending = st.pending[1:]
	}
	c := *b
	c.Events = slices.Clone(b.Events)
	st.pending = append(st.pending, c)
	st.pendingEvents += len(c.Events)
}

// BeginResync marks node as awaiting a snapshot (for example at start, before asking
// every known publisher for one): its entries are dropped and its batches buffered until
// Resync. It returns false if the node does not fit MaxNodes.
func (ix *Index) BeginResync(node string) bool {
	st := ix.state(node, 0)
	if st == nil {
		return false
	}
	if !st.resync {
		ix.enterResync(st)
	}
	return true
}

// Resync installs a snapshot: the node's entries become s.Keys, then buffered batches
// after s.Seq are replayed. It returns Applied, Ignored (an older incarnation, or a
// snapshot older than the entries held while the node was not awaiting one), or
// NeedResync (the buffered batches leave a gap after the snapshot: ask again). A
// snapshot is live evidence of its publisher, so it also lifts a Drop.
func (ix *Index) Resync(s *Snapshot) Result {
	st := ix.admit(s.Node, s.Incarnation)
	if st == nil {
		return Ignored
	}
	if !st.resync && s.Seq+1 < st.next {
		ix.stats.Ignored++
		return Ignored
	}
	clear(st.keys)
	for i := range s.Keys {
		if len(st.keys) >= ix.cfg.MaxKeysPerNode {
			ix.stats.OverKeys += uint64(len(s.Keys) - i)
			break
		}
		st.keys[short(&s.Keys[i])] = struct{}{}
	}
	st.next, st.resync = s.Seq+1, false
	ix.stats.Resyncs++
	pending := st.pending
	st.pending, st.pendingEvents = nil, 0
	slices.SortStableFunc(pending, func(a, b Batch) int { return cmp.Compare(a.First, b.First) })
	for i := range pending {
		b := &pending[i]
		if b.First > st.next {
			ix.stats.Gaps++
			ix.enterResync(st)
			for j := i; j < len(pending); j++ {
				ix.bufferLocked(st, &pending[j])
			}
			return NeedResync
		}
		if b.End() > st.next {
			ix.applyEvents(st, b)
		}
	}
	return Applied
}

// Drop forgets all of node's entries at once: the node died, left, or restarted. Later
// batches of the same incarnation are not applied until a snapshot (which only a live
// publisher answers) is installed; a newer incarnation starts afresh from sequence 1.
func (ix *Index) Drop(node string) {
	st := ix.nodes[node]
	if st == nil {
		return
	}
	if len(st.keys) > 0 {
		ix.stats.DroppedNodes++
	}
	ix.enterResync(st)
	st.pending, st.pendingEvents = nil, 0
}

// MatchNode returns the number of leading keys that node holds: the length, in blocks,
// of the longest prefix of the prompt that node has cached. 0 for unknown nodes and
// nodes awaiting a snapshot.
func (ix *Index) MatchNode(node string, keys []blocks.BlockHash) int {
	st := ix.nodes[node]
	if st == nil || st.resync {
		return 0
	}
	for i := range keys {
		if _, ok := st.keys[short(&keys[i])]; !ok {
			return i
		}
	}
	return len(keys)
}

// Match returns, for every node that holds at least keys[0], the number of leading keys
// it holds.
func (ix *Index) Match(keys []blocks.BlockHash) map[string]int {
	m := make(map[string]int)
	if len(keys) == 0 {
		return m
	}
	for n := range ix.nodes {
		if c := ix.MatchNode(n, keys); c > 0 {
			m[n] = c
		}
	}
	return m
}

// Stats returns the index's counters and sizes.
func (ix *Index) Stats() Stats {
	s := ix.stats
	s.Nodes, s.Keys, s.Resyncing = len(ix.nodes), 0, 0
	for _, st := range ix.nodes {
		s.Keys += len(st.keys)
		if st.resync {
			s.Resyncing++
		}
	}
	return s
}

// NodeState describes one tracked publisher.
type NodeState struct {
	Node        string
	Incarnation uint64
	Next        uint64 // next sequence number expected
	Keys        int
	Resyncing   bool
}

// Nodes lists the tracked publishers, sorted by node ID.
func (ix *Index) Nodes() []NodeState {
	out := make([]NodeState, 0, len(ix.nodes))
	for n, st := range ix.nodes {
		out = append(out, NodeState{Node: n, Incarnation: st.inc, Next: st.next, Keys: len(st.keys), Resyncing: st.resync})
	}
	slices.SortFunc(out, func(a, b NodeState) int { return cmp.Compare(a.Node, b.Node) })
	return out
}
