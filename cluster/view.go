package cluster

import (
	"slices"
	"strings"
)

// Kind is what happened to a node.
type Kind int

// The event kinds. Leave, Dead and Restart all mean: drop everything held about the
// node's previous incarnation.
const (
	// KindJoin: a node (by ID) entered the view. Also sent, once per current member, at the
	// start of every subscription.
	KindJoin Kind = iota + 1
	// KindUpdate: a node changed its Meta (same Incarnation).
	KindUpdate
	// KindLeave: a node left gracefully (Member.Leave).
	KindLeave
	// KindDead: a node stopped answering probes (crash, partition) and was declared dead,
	// or it left but its leave notice did not reach this node first.
	KindDead
	// KindRestart: a node already in the view appeared with a newer Incarnation before its
	// previous incarnation was declared dead or left. Meta is the new incarnation.
	KindRestart
)

func (k Kind) String() string {
	switch k {
	case KindJoin:
		return "join"
	case KindUpdate:
		return "update"
	case KindLeave:
		return "leave"
	case KindDead:
		return "dead"
	case KindRestart:
		return "restart"
	}
	return "kind(?)"
}

// Event is one change to the view. For Leave and Dead, Meta is the node's last known
// metadata.
type Event struct {
	Kind Kind
	Meta Meta
}

// view is the membership as seen from one node: per ID, the newest alive incarnation.
// It is a plain data structure (no locks, no IO); the memberlist callbacks feed it and
// pass the events it returns to the subscribers.
//
// Invariants: every entry of byID is in byName; byID[id] is the entry of byName with
// that ID and the highest Incarnation.
type view struct {
	byName map[string]Meta // alive memberlist nodes, every incarnation
	byID   map[string]Meta // the current incarnation of each node
}

func newView() *view {
	return &view{byName: map[string]Meta{}, byID: map[string]Meta{}}
}

// join records an alive node; it returns the event for subscribers, if any.
func (v *view) join(name string, m Meta) (Event, bool) {
	v.byName[name] = m
	cur, ok := v.byID[m.ID]
	switch {
	case !ok:
		v.byID[m.ID] = m
		return Event{KindJoin, m}, true
	case m.Incarnation > cur.Incarnation:
		v.byID[m.ID] = m
		return Event{KindRestart, m}, true
	case m.Incarnation == cur.Incarnation:
		v.byID[m.ID] = m
		return Event{KindUpdate, m}, true
	}
	return Event{}, false // an older incarnation: stale
}

// update records new metadata of an alive node.
func (v *view) update(name string, m Meta) (Event, bool) {
	if _, ok := v.byName[name]; !ok {
		return v.join(name, m)
	}
	v.byName[name] = m
	if cur := v.byID[m.ID]; cur.Incarnation != m.Incarnation {
		return Event{}, false
	}
	v.byID[m.ID] = m
	return Event{KindUpdate, m}, true
}

// remove records that a node left (kind Leave) or died (kind Dead). If another, older
// incarnation of the same ID is still alive (two processes started with one ID), it
// becomes current and is announced with a Join after the removal.
func (v *view) remove(name string, kind Kind) []Event {
	m, ok := v.byName[name]
	if !ok {
		return nil
	}
	delete(v.byName, name)
	if v.byID[m.ID].Incarnation != m.Incarnation {
		return nil
	}
	delete(v.byID, m.ID)
	evs := []Event{{kind, m}}
	var next Meta
	found := false
	for _, o := range v.byName {
		if o.ID == m.ID && (!found || o.Incarnation > next.Incarnation) {
			next, found = o, true
		}
	}
	if found {
		v.byID[m.ID] = next
		evs = append(evs, Event{KindJoin, next})
	}
	return evs
}

// members returns the current incarnation of every node, sorted by ID.
func (v *view) members() []Meta {
	ms := make([]Meta, 0, len(v.byID))
	for _, m := range v.byID {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b Meta) int { return strings.Compare(a.ID, b.ID) })
	return ms
}
