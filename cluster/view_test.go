package cluster

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestView(t *testing.T) {
	a1 := Meta{ID: "a", Incarnation: 1, Role: RoleWorker, State: StateReady}
	a1u := a1
	a1u.QueueDepth = 3
	a2 := Meta{ID: "a", Incarnation: 2, Role: RoleWorker, State: StateLoading}
	b1 := Meta{ID: "b", Incarnation: 1, Role: RoleRouter, State: StateReady}
	type op struct {
		kind Kind // KindJoin, KindUpdate, KindLeave or KindDead (the memberlist callback)
		meta Meta
	}
	for _, tc := range []struct {
		name    string
		ops     []op
		want    []Event
		members []Meta
	}{
		{"join", []op{{KindJoin, a1}, {KindJoin, b1}}, []Event{{KindJoin, a1}, {KindJoin, b1}}, []Meta{a1, b1}},
		{"update", []op{{KindJoin, a1}, {KindUpdate, a1u}}, []Event{{KindJoin, a1}, {KindUpdate, a1u}}, []Meta{a1u}},
		{"leave", []op{{KindJoin, a1}, {KindLeave, a1}}, []Event{{KindJoin, a1}, {KindLeave, a1}}, []Meta{}},
		{"dead then rejoin", []op{{KindJoin, a1}, {KindDead, a1}, {KindJoin, a1}},
			[]Event{{KindJoin, a1}, {KindDead, a1}, {KindJoin, a1}}, []Meta{a1}},
		{"restart before death, old death silent", []op{{KindJoin, a1}, {KindJoin, a2}, {KindDead, a1}},
			[]Event{{KindJoin, a1}, {KindRestart, a2}}, []Meta{a2}},
		{"stale incarnation ignored", []op{{KindJoin, a2}, {KindJoin, a1}, {KindUpdate, a1u}, {KindLeave, a1}},
			[]Event{{KindJoin, a2}}, []Meta{a2}},
		{"newest dies while an older one lives", []op{{KindJoin, a1}, {KindJoin, a2}, {KindDead, a2}},
			[]Event{{KindJoin, a1}, {KindRestart, a2}, {KindDead, a2}, {KindJoin, a1}}, []Meta{a1}},
		{"leave of unknown node", []op{{KindLeave, b1}}, nil, []Meta{}},
		{"update of unknown node joins", []op{{KindUpdate, b1}}, []Event{{KindJoin, b1}}, []Meta{b1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newView()
			var got []Event
			for _, o := range tc.ops {
				switch o.kind {
				case KindJoin:
					if ev, ok := v.join(nodeName(o.meta), o.meta); ok {
						got = append(got, ev)
					}
				case KindUpdate:
					if ev, ok := v.update(nodeName(o.meta), o.meta); ok {
						got = append(got, ev)
					}
				default:
					got = append(got, v.remove(nodeName(o.meta), o.kind)...)
				}
				checkView(t, v)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
			if m := v.members(); !slices.Equal(m, tc.members) {
				t.Errorf("members %v, want %v", m, tc.members)
			}
		})
	}
}

// checkView asserts the view's invariants.
func checkView(t *testing.T, v *view) {
	t.Helper()
	for id, m := range v.byID {
		if got, ok := v.byName[nodeName(m)]; !ok || got != m {
			t.Fatalf("byID[%s] = %+v not in byName", id, m)
		}
		for _, o := range v.byName {
			if o.ID == id && o.Incarnation > m.Incarnation {
				t.Fatalf("byID[%s] has incarnation %d, byName has %d", id, m.Incarnation, o.Incarnation)
			}
		}
	}
	for _, o := range v.byName {
		if _, ok := v.byID[o.ID]; !ok {
			t.Fatalf("%s alive in byName but not in byID", o.ID)
		}
	}
}

func TestCoalesce(t *testing.T) {
	meta := func(id string, inc uint64, q int) Meta {
		return Meta{ID: id, Incarnation: inc, QueueDepth: q, Role: RoleWorker, State: StateReady}
	}
	for _, tc := range []struct {
		name string
		in   []Event
		want []Event
	}{
		{"updates fold into the join",
			[]Event{{KindJoin, meta("a", 1, 0)}, {KindUpdate, meta("a", 1, 1)}, {KindUpdate, meta("a", 1, 2)}},
			[]Event{{KindJoin, meta("a", 1, 2)}}},
		{"other nodes in between",
			[]Event{{KindUpdate, meta("a", 1, 1)}, {KindJoin, meta("b", 1, 0)}, {KindUpdate, meta("a", 1, 2)}},
			[]Event{{KindUpdate, meta("a", 1, 2)}, {KindJoin, meta("b", 1, 0)}}},
		{"not across a death",
			[]Event{{KindJoin, meta("a", 1, 0)}, {KindDead, meta("a", 1, 0)}, {KindUpdate, meta("a", 1, 5)}},
			[]Event{{KindJoin, meta("a", 1, 0)}, {KindDead, meta("a", 1, 0)}, {KindUpdate, meta("a", 1, 5)}}},
		{"not across incarnations",
			[]Event{{KindRestart, meta("a", 2, 0)}, {KindUpdate, meta("a", 1, 5)}},
			[]Event{{KindRestart, meta("a", 2, 0)}, {KindUpdate, meta("a", 1, 5)}}},
		{"into a restart",
			[]Event{{KindJoin, meta("a", 1, 0)}, {KindRestart, meta("a", 2, 0)}, {KindUpdate, meta("a", 2, 4)}},
			[]Event{{KindJoin, meta("a", 1, 0)}, {KindRestart, meta("a", 2, 4)}}},
		{"joins and leaves never fold",
			[]Event{{KindJoin, meta("a", 1, 0)}, {KindLeave, meta("a", 1, 0)}, {KindJoin, meta("a", 1, 0)}},
			[]Event{{KindJoin, meta("a", 1, 0)}, {KindLeave, meta("a", 1, 0)}, {KindJoin, meta("a", 1, 0)}}},
	} {
		var q []Event
		for _, ev := range tc.in {
			q = coalesce(q, ev)
		}
		if !slices.Equal(q, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, q, tc.want)
		}
	}
}

// TestSubscriberOrder pushes many events to a reader that starts late: nothing blocks,
// each node's Join comes first, Updates coalesce, and each node's last Meta arrives.
func TestSubscriberOrder(t *testing.T) {
	s := newSubscriber(nil)
	defer s.close()
	final := map[string]Meta{}
	for i := range 50 {
		id := fmt.Sprintf("n%d", i%5)
		m := Meta{ID: id, Incarnation: 1, QueueDepth: i, Role: RoleWorker, State: StateReady}
		kind := KindUpdate
		if i < 5 {
			kind = KindJoin
		}
		s.push(Event{kind, m})
		final[id] = m
	}
	got := map[string]Meta{}
	n := 0
	for !maps.Equal(got, final) {
		ev := <-s.out
		n++
		if _, seen := got[ev.Meta.ID]; seen == (ev.Kind == KindJoin) {
			t.Fatalf("event %d: %v for %s (seen before: %v)", n, ev.Kind, ev.Meta.ID, seen)
		}
		if prev, ok := got[ev.Meta.ID]; ok && ev.Meta.QueueDepth <= prev.QueueDepth {
			t.Fatalf("event %d: %s went back from %d to %d", n, ev.Meta.ID, prev.QueueDepth, ev.Meta.QueueDepth)
		}
		got[ev.Meta.ID] = ev.Meta
	}
	// At most the one event the delivery goroutine held before the reader came is not
	// coalesced: 5 Joins and at most 1 + 5 Updates.
	if n > 11 {
		t.Errorf("%d events for 5 joins and 45 updates", n)
	}
	s.close()
	if _, ok := <-s.out; ok {
		t.Fatal("channel open after close")
	}
}

func TestLeaveMessage(t *testing.T) {
	b := encodeLeave("w#1f", "127.0.0.1:7946")
	if name, addr, ok := decodeLeave(b); !ok || name != "w#1f" || addr != "127.0.0.1:7946" {
		t.Fatalf("round trip: %q %q %v", name, addr, ok)
	}
	for _, bad := range [][]byte{nil, {msgLeave}, {msgLeave, 0}, {msgLeave, 9, 'a'}, {msgLeaveAck, 1, 'a'}, b[:2]} {
		if _, _, ok := decodeLeave(bad); ok {
			t.Errorf("decoded %q", bad)
		}
	}
}

// TestViewAgainstModel applies random memberlist callbacks to the view and to a naive
// model (the alive incarnations, the newest per ID current) and checks after every step
// that a consumer folding the view's events holds exactly the model's nodes.
func TestViewAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 1))
	v := newView()
	alive := map[string]Meta{}  // the model: memberlist name -> Meta
	folded := map[string]Meta{} // what a subscriber holds
	fold := func(evs ...Event) {
		for _, ev := range evs {
			switch ev.Kind {
			case KindJoin, KindUpdate, KindRestart:
				folded[ev.Meta.ID] = ev.Meta
			case KindLeave, KindDead:
				delete(folded, ev.Meta.ID)
			}
		}
	}
	for step := range 5000 {
		m := Meta{ID: fmt.Sprintf("n%d", r.IntN(3)), Incarnation: uint64(1 + r.IntN(3)),
			QueueDepth: r.IntN(100), Role: RoleWorker, State: StateReady}
		name := nodeName(m)
		_, isAlive := alive[name]
		switch op := r.IntN(3); {
		case op == 0 && !isAlive:
			alive[name] = m
			if ev, ok := v.join(name, m); ok {
				fold(ev)
			}
		case op == 1 && isAlive:
			alive[name] = m
			if ev, ok := v.update(name, m); ok {
				fold(ev)
			}
		case op == 2 && isAlive:
			delete(alive, name)
			fold(v.remove(name, []Kind{KindLeave, KindDead}[r.IntN(2)])...)
		default:
			continue
		}
		checkView(t, v)
		want := map[string]Meta{}
		for _, a := range alive {
			if cur, ok := want[a.ID]; !ok || a.Incarnation > cur.Incarnation {
				want[a.ID] = a
			}
		}
		if !maps.Equal(folded, want) {
			t.Fatalf("step %d: folded events %v, model %v", step, folded, want)
		}
		if got := v.members(); len(got) != len(want) {
			t.Fatalf("step %d: members %v, model %v", step, got, want)
		}
	}
}
