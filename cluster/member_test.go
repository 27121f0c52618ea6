package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"
	"time"
)

// TestLifecycle runs five nodes in one process: join through one seed, Update, Leave,
// a crash (Shutdown) seen as Dead, and restarts seen as new incarnations. Assertions go
// through what a consumer would hold (the folded events), so a false suspicion on a
// loaded machine (a Dead then a Join again) does not fail it.
func TestLifecycle(t *testing.T) {
	seed := startNode(t, workerMeta("node-0"), nil, nil)
	nodes := []*Member{seed}
	recs := []*recorder{record(t, seed)}
	for i := 1; i < 5; i++ {
		n := startNode(t, workerMeta(fmt.Sprintf("node-%d", i)), []string{seed.Addr()}, nil)
		nodes = append(nodes, n)
		recs = append(recs, record(t, n))
	}
	if ev := recs[0].all()[0]; ev.Kind != KindJoin || ev.Meta != seed.Self() {
		t.Fatalf("first event of a subscription %+v, want the Join of node-0 itself", ev)
	}
	all := []string{"node-0", "node-1", "node-2", "node-3", "node-4"}
	for i, n := range nodes {
		waitFor(t, 5*time.Second, "everyone sees everyone", func() error {
			if err := seesExactly(n, all...); err != nil {
				return err
			}
			return sameIDs(recs[i].state(), all...)
		})
	}

	// Update propagates.
	meta := nodes[1].Self()
	meta.FreeBlocks, meta.QueueDepth, meta.State = 3, 7, StateDraining
	if err := nodes[1].Update(meta); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		waitFor(t, 5*time.Second, "update seen", func() error {
			for _, m := range n.Members() {
				if m.ID == "node-1" && m != meta {
					return fmt.Errorf("%s sees %+v", n.Self().ID, m)
				}
			}
			if got := recs[i].state()["node-1"]; got != meta {
				return fmt.Errorf("%s: events give node-1 %+v", n.Self().ID, got)
			}
			return nil
		})
	}

	// Leave is seen as Leave.
	left := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // generous for loaded machines; acks come in ms
	defer cancel()
	if err := nodes[4].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nodes[4].Leave(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Leave: %v, want ErrClosed", err)
	}
	for i := range 4 {
		waitFor(t, 5*time.Second, "leave seen", func() error {
			if ev, ok := recs[i].last("node-4"); !ok || ev.Kind != KindLeave {
				return fmt.Errorf("node-%d: last event about node-4 %v, want leave", i, ev.Kind)
			}
			return seesExactly(nodes[i], all[:4]...)
		})
		if _, _, ok := recs[i].findAfter(KindDead, "node-4", left); ok {
			t.Errorf("node-%d saw node-4 Dead, want Leave", i)
		}
	}

	// A crash is seen as Dead by all others.
	crashed := time.Now()
	nodes[3].Shutdown()
	var slowest time.Duration
	for i := range 3 {
		waitFor(t, 8*time.Second, "crash seen as dead", func() error {
			_, at, ok := recs[i].findAfter(KindDead, "node-3", crashed)
			if !ok {
				return fmt.Errorf("node-%d: no Dead event for node-3", i)
			}
			slowest = max(slowest, at.Sub(crashed))
			return seesExactly(nodes[i], all[:3]...)
		})
	}
	lc := LocalConfig()
	t.Logf("crash of 1 of 4 nodes seen as Dead by all 3 others after %v (LocalConfig: probe %v, timeout %v, suspicion mult %d)",
		slowest, lc.ProbeInterval, lc.ProbeTimeout, lc.SuspicionMult)

	// Restarted after its death was noticed: a Join with the new incarnation.
	old3 := nodes[3].Self()
	new3 := startNode(t, workerMeta("node-3"), []string{seed.Addr()}, nil)
	if new3.Self().Incarnation <= old3.Incarnation {
		t.Fatalf("new incarnation %d not after %d", new3.Self().Incarnation, old3.Incarnation)
	}
	for i := range 3 {
		waitFor(t, 5*time.Second, "restarted node joins", func() error {
			if got := recs[i].state()["node-3"]; got.Incarnation != new3.Self().Incarnation {
				return fmt.Errorf("node-%d holds node-3 incarnation %d", i, got.Incarnation)
			}
			return nil
		})
	}

	// Restarted before the old incarnation is gone (a replacement started while the old
	// process hangs): a Restart event, and nothing more about the old incarnation.
	old2 := nodes[2].Self()
	restarted := time.Now()
	new2 := startNode(t, workerMeta("node-2"), []string{seed.Addr()}, nil)
	for i := range 2 {
		waitFor(t, 5*time.Second, "restart seen", func() error {
			ev, _, ok := recs[i].findAfter(KindRestart, "node-2", restarted)
			if !ok || ev.Meta.Incarnation != new2.Self().Incarnation {
				return fmt.Errorf("node-%d: no Restart of node-2 with the new incarnation (events %v)", i, recs[i].all())
			}
			for _, m := range nodes[i].Members() {
				if m.ID == "node-2" && m.Incarnation != new2.Self().Incarnation {
					return fmt.Errorf("node-%d still has node-2's old incarnation", i)
				}
			}
			return nil
		})
	}
	nodes[2].Shutdown()
	waitFor(t, 8*time.Second, "old incarnation declared dead", func() error {
		for _, n := range seed.peerNodes() {
			if n.Name == nodeName(old2) {
				return fmt.Errorf("old node-2 still alive in memberlist")
			}
		}
		return nil
	})
	for i := range 2 {
		for _, ev := range recs[i].all() {
			if ev.Meta.ID == "node-2" && ev.Meta.Incarnation == old2.Incarnation && (ev.Kind == KindDead || ev.Kind == KindLeave) {
				if _, _, after := recs[i].findAfter(ev.Kind, "node-2", restarted); after {
					t.Errorf("node-%d: %v event for node-2's old incarnation after its restart: it must be silent", i, ev.Kind)
				}
			}
		}
		waitFor(t, 5*time.Second, "settled after the restart", func() error {
			if got := recs[i].state()["node-2"]; got.Incarnation != new2.Self().Incarnation {
				return fmt.Errorf("node-%d holds node-2 incarnation %d", i, got.Incarnation)
			}
			return seesExactly(nodes[i], "node-0", "node-1", "node-2", "node-3")
		})
	}
}

// sameIDs reports whether st holds exactly the nodes want.
func sameIDs(st map[string]Meta, want ...string) error {
	got := slices.Sorted(maps.Keys(st))
	if !slices.Equal(got, want) {
		return fmt.Errorf("events give %v, want %v", got, want)
	}
	return nil
}

func TestLeaveAloneAndClosedMember(t *testing.T) {
	m := startNode(t, workerMeta("solo"), nil, nil)
	ch, _ := m.Subscribe()
	if ev := <-ch; ev.Kind != KindJoin || ev.Meta.ID != "solo" {
		t.Fatalf("first event %+v, want own Join", ev)
	}
	if err := m.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range ch { // closed by Leave
	}
	if err := m.Update(workerMeta("solo")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Leave: %v, want ErrClosed", err)
	}
	if err := m.Shutdown(); err != nil {
		t.Fatalf("Shutdown after Leave: %v", err)
	}
	ch2, cancel := m.Subscribe()
	cancel()
	for range ch2 {
	}
}

func TestUpdateRejects(t *testing.T) {
	m := startNode(t, workerMeta("u"), nil, nil)
	self := m.Self()
	for _, tc := range []struct {
		name string
		mod  func(*Meta)
		want error
	}{
		{"other ID", func(m *Meta) { m.ID = "v" }, ErrBadMeta},
		{"other incarnation", func(m *Meta) { m.Incarnation++ }, ErrBadMeta},
		{"bad state", func(m *Meta) { m.State = "gone" }, ErrBadMeta},
		{"too large", func(m *Meta) { m.Pipeline = string(make([]byte, MaxMetaSize)) }, ErrMetaTooLarge},
	} {
		meta := self
		tc.mod(&meta)
		if err := m.Update(meta); !errors.Is(err, tc.want) {
			t.Errorf("%s: Update = %v, want %v", tc.name, err, tc.want)
		}
	}
	if m.Self() != self {
		t.Errorf("rejected updates changed Self: %+v", m.Self())
	}
	zero := self
	zero.Incarnation = 0 // keeps the incarnation
	zero.QueueDepth = 5
	if err := m.Update(zero); err != nil {
		t.Fatal(err)
	}
	if got := m.Self(); got.Incarnation != self.Incarnation || got.QueueDepth != 5 {
		t.Errorf("Self after update %+v", got)
	}
}

func TestJoinRejects(t *testing.T) {
	big := workerMeta("big")
	big.Model = string(make([]byte, MaxMetaSize))
	if _, err := tryNode(t, big, nil, nil, time.Second); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("Join with a too large meta: %v, want ErrMetaTooLarge", err)
	}
	if _, err := tryNode(t, Meta{ID: "x"}, nil, nil, time.Second); !errors.Is(err, ErrBadMeta) {
		t.Errorf("Join with no role: %v, want ErrBadMeta", err)
	}
	for _, mod := range []func(*Config){
		func(c *Config) { c.SecretKey = []byte("short") },
		func(c *Config) { c.BindPort = 70000 },
		func(c *Config) { c.ProbeTimeout = 2 * c.ProbeInterval },
		func(c *Config) { c.GossipInterval = -1 },
		func(c *Config) { c.Seeds = []string{"host:notaport"} },
	} {
		if _, err := tryNode(t, workerMeta("c"), nil, mod, time.Second); !errors.Is(err, ErrBadConfig) {
			t.Errorf("Join with a bad config: %v, want ErrBadConfig", err)
		}
	}
}

// TestMetaAtLimit gossips a Meta of exactly MaxMetaSize bytes between two nodes.
func TestMetaAtLimit(t *testing.T) {
	full := workerMeta("full")
	full.Incarnation = uint64(time.Now().UnixNano())
	meta := metaOfSize(t, full, MaxMetaSize)
	a := startNode(t, meta, nil, nil)
	b := startNode(t, workerMeta("b"), []string{a.Addr()}, nil)
	waitFor(t, 5*time.Second, "full meta seen", func() error {
		for _, m := range b.Members() {
			if m.ID == "full" {
				if m != a.Self() {
					return fmt.Errorf("got %+v", m)
				}
				return nil
			}
		}
		return fmt.Errorf("b sees %v", ids(b.Members()))
	})
}

// TestSlowSubscriber: a subscriber that does not read never holds up gossip, and when
// it reads it gets every node once with its latest Meta.
func TestSlowSubscriber(t *testing.T) {
	a := startNode(t, workerMeta("a"), nil, nil)
	b := startNode(t, workerMeta("b"), []string{a.Addr()}, nil)
	waitFor(t, 5*time.Second, "pair", func() error { return seesExactly(a, "a", "b") })
	ch, cancel := a.Subscribe()
	defer cancel()
	meta := b.Self()
	start := time.Now()
	for i := range 200 {
		meta.QueueDepth = i
		if err := b.Update(meta); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("200 updates in %v while a's subscriber did not read", time.Since(start).Round(time.Millisecond))
	waitFor(t, 5*time.Second, "last update seen", func() error {
		for _, m := range a.Members() {
			if m.ID == "b" && m != meta {
				return fmt.Errorf("a sees b with queue depth %d", m.QueueDepth)
			}
		}
		return nil
	})
	var got []Event
	for len(got) == 0 || got[len(got)-1].Meta != meta {
		select {
		case ev := <-ch:
			got = append(got, ev)
		case <-time.After(5 * time.Second):
			t.Fatalf("events %v never reached b's last meta", got)
		}
	}
	if len(got) > 3 {
		t.Errorf("%d events for 2 joins and 200 updates, want them coalesced: %v", len(got), got)
	}
}

// TestDeadDetectionLAN measures how long DefaultConfig's timings take to report a crash
// (five nodes on loopback). It takes about 10 s, so it runs only when asked:
// KVMESH_CLUSTER_LAN=1 go test -run DeadDetectionLAN -v ./cluster
func TestDeadDetectionLAN(t *testing.T) {
	if os.Getenv("KVMESH_CLUSTER_LAN") == "" {
		t.Skip("set KVMESH_CLUSTER_LAN=1 to measure DefaultConfig's failure detection")
	}
	lan := func(c *Config) {
		d := DefaultConfig()
		c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult = d.ProbeInterval, d.ProbeTimeout, d.SuspicionMult
		c.GossipInterval, c.PushPullInterval, c.StreamTimeout = d.GossipInterval, d.PushPullInterval, d.StreamTimeout
	}
	seed := startNode(t, workerMeta("n0"), nil, lan)
	nodes := []*Member{seed}
	for i := 1; i < 5; i++ {
		nodes = append(nodes, startNode(t, workerMeta(fmt.Sprintf("n%d", i)), []string{seed.Addr()}, lan))
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, "all joined", func() error { return seesExactly(n, "n0", "n1", "n2", "n3", "n4") })
	}
	crashed := time.Now()
	nodes[4].Shutdown()
	for i, n := range nodes[:4] {
		waitFor(t, 60*time.Second, "crash seen", func() error { return seesExactly(n, "n0", "n1", "n2", "n3") })
		t.Logf("n%d sees the crash after %v", i, time.Since(crashed).Round(10*time.Millisecond))
	}
}

// TestShutdownDuringLeave: Shutdown racing a Leave neither panics (memberlist panics on
// a Leave after its Shutdown) nor hangs.
func TestShutdownDuringLeave(t *testing.T) {
	a := startNode(t, workerMeta("a"), nil, nil)
	b := startNode(t, workerMeta("b"), []string{a.Addr()}, nil)
	waitFor(t, 5*time.Second, "pair", func() error { return seesExactly(b, "a", "b") })
	done := make(chan error, 1)
	go func() { done <- b.Leave(context.Background()) }()
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}
