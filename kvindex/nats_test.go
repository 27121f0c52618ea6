package kvindex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/nats-io/nats.go"
)

// quiet is a logger for tests that expect warnings.
var quiet = slog.New(slog.DiscardHandler)

func startServer(t *testing.T, cfg ServerConfig) string {
	t.Helper()
	s, url, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return url
}

func connect(t *testing.T, url string, cfg ClientConfig) *nats.Conn {
	t.Helper()
	nc, err := Connect(url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeLeader is a pipeline leader: a prefix cache (a set of keys) and its Publisher.
type fakeLeader struct {
	node string
	inc  uint64
	mu   sync.Mutex // protects held
	held map[blocks.BlockHash]bool
	pub  *Publisher
}

func newLeader(t *testing.T, nc *nats.Conn, node string, inc uint64, heartbeat time.Duration) *fakeLeader {
	t.Helper()
	l := &fakeLeader{node: node, inc: inc, held: map[blocks.BlockHash]bool{}}
	p, err := NewPublisher(nc, PublisherConfig{
		Model: "stories260K", Node: node, Incarnation: inc, Heartbeat: heartbeat,
		Keys: func() []blocks.BlockHash {
			l.mu.Lock()
			defer l.mu.Unlock()
			return slices.Collect(maps.Keys(l.held))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	l.pub = p
	return l
}

// change stores and removes keys in the cache and publishes the events, as the engine
// loop does with TakeEvents.
func (l *fakeLeader) change(t *testing.T, store, remove []blocks.BlockHash) {
	t.Helper()
	var evs []blocks.Event
	l.mu.Lock()
	for _, k := range store {
		l.held[k] = true
		evs = append(evs, blocks.Event{Kind: blocks.Stored, Hash: k})
	}
	for _, k := range remove {
		delete(l.held, k)
		evs = append(evs, blocks.Event{Kind: blocks.Removed, Hash: k})
	}
	l.mu.Unlock()
	if err := l.pub.Publish(evs); err != nil {
		t.Fatal(err)
	}
}

// randomChange stores a few new chained keys and removes a few held ones.
func (l *fakeLeader) randomChange(t *testing.T, rng *rand.Rand) {
	t.Helper()
	tokens := make([]int, 4*(1+rng.IntN(4)))
	for i := range tokens {
		tokens[i] = rng.IntN(512)
	}
	store := Keys(Seed("m", "t", 4), tokens, 4)
	l.mu.Lock()
	var remove []blocks.BlockHash
	for k := range l.held {
		if rng.IntN(4) == 0 {
			remove = append(remove, k)
		}
	}
	l.mu.Unlock()
	l.change(t, store, remove)
}

// loseNext makes the publisher skip a sequence number, as if a message were lost.
func (l *fakeLeader) loseNext() {
	l.pub.mu.Lock()
	l.pub.seq++
	l.pub.mu.Unlock()
}

// agrees returns nil if the subscriber's entries for every leader are exactly its cache.
func agrees(s *Subscriber, leaders ...*fakeLeader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range leaders {
		st := s.ix.nodes[l.node]
		if st == nil {
			return fmt.Errorf("%s unknown", l.node)
		}
		l.mu.Lock()
		want := map[shortKey]struct{}{}
		for k := range l.held {
			want[short(&k)] = struct{}{}
		}
		seq := l.pub.Seq()
		l.mu.Unlock()
		switch {
		case st.resync:
			return fmt.Errorf("%s awaits a snapshot", l.node)
		case st.inc != l.inc:
			return fmt.Errorf("%s: incarnation %d, want %d", l.node, st.inc, l.inc)
		case st.next-1 != seq:
			return fmt.Errorf("%s: applied to %d, published %d", l.node, st.next-1, seq)
		case !maps.Equal(st.keys, want):
			return fmt.Errorf("%s: %d keys, cache has %d", l.node, len(st.keys), len(want))
		}
	}
	return nil
}

func newSubscriber(t *testing.T, nc *nats.Conn, cfg SubscriberConfig) *Subscriber {
	t.Helper()
	if cfg.Model == "" {
		cfg.Model = "stories260K"
	}
	s, err := NewSubscriber(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestEndToEnd: three leaders and two routers over a real embedded server. The routers
// converge on every leader's cache; a lost message is repaired by a snapshot; a router
// started late gets the state by snapshot; a restarted leader's old entries go at once.
func TestEndToEnd(t *testing.T) {
	url := startServer(t, ServerConfig{})
	rng := rand.New(rand.NewPCG(11, 12))
	leaders := make([]*fakeLeader, 3)
	for i := range leaders {
		leaders[i] = newLeader(t, connect(t, url, ClientConfig{Name: fmt.Sprint("leader", i)}), fmt.Sprintf("leader-%d.pipelines", i), 100, -1)
	}
	r1 := newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{})
	r2 := newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{})

	for range 20 {
		for _, l := range leaders {
			l.randomChange(t, rng)
		}
	}
	for _, r := range []*Subscriber{r1, r2} {
		waitFor(t, "routers converge", func() error { return agrees(r, leaders...) })
	}

	// A probe prompt: leader 0 holds its 3 blocks, the others none.
	probe := Keys(Seed("m", "t", 4), []int{7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9}, 4)
	leaders[0].change(t, probe, nil)
	waitFor(t, "probe", func() error {
		if m := r1.Match(probe); m[leaders[0].node] != 3 {
			return fmt.Errorf("match %v", m)
		}
		return nil
	})
	cands := []Candidate{{leaders[1].node, 0, 100}, {leaders[0].node, 0, 100}, {leaders[2].node, 0, 100}}
	if i, m := r1.Pick(cands, probe); i != 1 || m != 3 {
		t.Errorf("Pick = %d, %d; want leader 0 with 3 blocks", i, m)
	}

	// Lose a message of leader 1: the next batch shows the gap, the router resyncs.
	gaps := r1.Stats().Gaps
	leaders[1].loseNext()
	leaders[1].randomChange(t, rng)
	leaders[1].randomChange(t, rng)
	for _, r := range []*Subscriber{r1, r2} {
		waitFor(t, "resync after a lost message", func() error { return agrees(r, leaders...) })
	}
	if st := r1.Stats(); st.Gaps <= gaps || st.Resyncs == 0 {
		t.Errorf("no gap or resync counted: %+v", st)
	}

	// A router started late gets everything by snapshot.
	r3 := newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{})
	nodes := []string{leaders[0].node, leaders[1].node, leaders[2].node}
	if err := r3.Sync(t.Context(), nodes); err != nil {
		t.Fatal(err)
	}
	if err := agrees(r3, leaders...); err != nil {
		t.Fatalf("late router after Sync: %v", err)
	}

	// Leader 2 restarts with a new incarnation and an empty cache.
	_ = leaders[2].pub.Close()
	old := leaders[2]
	leaders[2] = newLeader(t, connect(t, url, ClientConfig{}), old.node, old.inc+1, -1)
	leaders[2].randomChange(t, rng)
	for _, r := range []*Subscriber{r1, r2, r3} {
		waitFor(t, "restart replaces the old entries", func() error { return agrees(r, leaders...) })
	}
	for k := range old.held {
		if !leaders[2].held[k] && r1.Match([]blocks.BlockHash{k})[old.node] != 0 {
			t.Fatal("an entry of the old incarnation survived")
		}
	}

	// Membership reports leader 0 dead: its entries go at once, everywhere.
	r1.Drop(leaders[0].node)
	if m := r1.Match(probe); m[leaders[0].node] != 0 {
		t.Errorf("dropped node still matches: %v", m)
	}

	// The routers that saw everything hold the same index.
	for range 10 {
		leaders[rng.IntN(3)].randomChange(t, rng)
	}
	waitFor(t, "two routers converge", func() error {
		if err := agrees(r2, leaders...); err != nil {
			return err
		}
		return agrees(r3, leaders...)
	})
	if a, b := dump(r2), dump(r3); !maps.EqualFunc(a, b, maps.Equal) {
		t.Error("two routers hold different indexes")
	}
}

// dump copies a subscriber's entries.
func dump(s *Subscriber) map[string]map[shortKey]struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[shortKey]struct{}{}
	for n, st := range s.ix.nodes {
		out[n] = maps.Clone(st.keys)
	}
	return out
}

// TestHeartbeatFindsPublisher: a router that was not told about a publisher finds it by
// its heartbeat and fetches its snapshot; a lost last batch is noticed the same way.
func TestHeartbeatFindsPublisher(t *testing.T) {
	url := startServer(t, ServerConfig{})
	l := newLeader(t, connect(t, url, ClientConfig{}), "solo", 1, 20*time.Millisecond)
	l.change(t, []blocks.BlockHash{key('a'), key('b')}, nil)
	r := newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{})
	waitFor(t, "found by heartbeat", func() error { return agrees(r, l) })
	l.loseNext()
	waitFor(t, "lost last batch noticed", func() error {
		if r.Stats().Gaps == 0 {
			return errors.New("no gap yet")
		}
		return agrees(r, l)
	})
}

// TestSnapshotInParts: with a small payload limit, batches and snapshots are split into
// many messages and arrive whole.
func TestSnapshotInParts(t *testing.T) {
	url := startServer(t, ServerConfig{MaxPayload: 1024})
	l := newLeader(t, connect(t, url, ClientConfig{}), "big", 1, -1)
	live := newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{})
	tokens := make([]int, 3000)
	for i := range tokens {
		tokens[i] = i
	}
	l.change(t, Keys(Seed("m", "t", 4), tokens, 4), nil) // 750 events: ≥ 25 messages
	waitFor(t, "split batches arrive", func() error { return agrees(live, l) })
	late := newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{})
	if err := late.Sync(t.Context(), []string{"big"}); err != nil { // ≥ 25 parts
		t.Fatal(err)
	}
	if err := agrees(late, l); err != nil {
		t.Fatal(err)
	}
	if n := late.Nodes(); len(n) != 1 || n[0].Keys != 750 {
		t.Fatalf("nodes %+v", n)
	}
}

// TestGarbage: malformed messages on the subjects are logged and ignored; the subscriber
// and the publisher keep working.
func TestGarbage(t *testing.T) {
	url := startServer(t, ServerConfig{})
	l := newLeader(t, connect(t, url, ClientConfig{}), "n1", 1, -1)
	pl, err := NewPublisher(connect(t, url, ClientConfig{}), PublisherConfig{Model: "stories260K", Node: "n1", Incarnation: 1,
		Keys: func() []blocks.BlockHash { return nil }, Heartbeat: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_ = pl.Close() // only to build a valid message below
	r := newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{Logger: quiet})
	evil := connect(t, url, ClientConfig{})
	rng := rand.New(rand.NewPCG(13, 14))
	spoof := appendBatch(nil, &Batch{Node: "n2", Incarnation: 1, First: 1, Events: []Event{{Kind: blocks.Stored, Key: key('z')}}})
	garbage := [][]byte{nil, []byte("hello"), []byte(`{"node":"n1"}`), []byte("KV\x01\x01\xff"), spoof}
	for range 50 {
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		garbage = append(garbage, b)
	}
	for _, g := range garbage {
		if err := evil.Publish(eventSubject(DefaultPrefix, "stories260K", "n1"), g); err != nil {
			t.Fatal(err)
		}
		// Bad snapshot requests, with and without a reply subject.
		_ = evil.PublishRequest(snapshotSubject(DefaultPrefix, "stories260K", "n1"), nats.NewInbox(), g)
		_ = evil.Publish(snapshotSubject(DefaultPrefix, "stories260K", "n1"), g)
	}
	if err := evil.Flush(); err != nil {
		t.Fatal(err)
	}
	l.change(t, []blocks.BlockHash{key('a')}, nil)
	waitFor(t, "still converges", func() error { return agrees(r, l) })
	waitFor(t, "garbage counted", func() error {
		if n := r.Stats().Malformed; n < uint64(len(garbage)) {
			return fmt.Errorf("%d malformed counted", n)
		}
		return nil
	})
	if m := r.Match([]blocks.BlockHash{key('z')}); len(m) != 0 {
		t.Errorf("a spoofed batch was applied: %v", m)
	}
	if err := r.Sync(t.Context(), []string{"n1"}); err != nil {
		t.Errorf("publisher stopped answering: %v", err)
	}
	// Garbage answers to a snapshot request fail the request, nothing more.
	answers := [][]byte{
		[]byte("junk"),
		appendSnapshotPart(nil, &Snapshot{Node: "other", Incarnation: 1}, nil, 0, 1),
		appendSnapshotPart(nil, &Snapshot{Node: "liar2", Incarnation: 1}, make([]blocks.BlockHash, 1000), 0, 1<<20),
	}
	for i, a := range answers {
		node := fmt.Sprint("liar", i)
		if _, err := evil.Subscribe(snapshotSubject(DefaultPrefix, "stories260K", node), func(m *nats.Msg) { _ = m.Respond(a) }); err != nil {
			t.Fatal(err)
		}
		if err := evil.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(t.Context(), []string{node}); !errors.Is(err, ErrSnapshot) {
			t.Errorf("garbage answer %d: %v", i, err)
		}
	}
	if err := agrees(r, l); err != nil {
		t.Error(err)
	}
}

// TestSyncDeadNode: a snapshot request to a node nobody answers for fails within the
// timeout; the node matches nothing.
func TestSyncDeadNode(t *testing.T) {
	url := startServer(t, ServerConfig{})
	r := newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{SnapshotTimeout: 100 * time.Millisecond, Logger: quiet})
	start := time.Now()
	err := r.Sync(t.Context(), []string{"ghost"})
	if !errors.Is(err, ErrSnapshot) || !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("Sync of a dead node: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if n := r.Nodes(); len(n) != 1 || !n[0].Resyncing {
		t.Errorf("nodes %+v", n)
	}
	// A publisher that hears the request but never answers: the request times out.
	hung := connect(t, url, ClientConfig{})
	if _, err := hung.Subscribe(snapshotSubject(DefaultPrefix, "stories260K", "hung"), func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := hung.Flush(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := r.Sync(t.Context(), []string{"hung"}); !errors.Is(err, ErrSnapshot) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync of a hung node: %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", d)
	}
}

func TestServerAuth(t *testing.T) {
	for _, tc := range []struct {
		name      string
		srv       ServerConfig
		good, bad ClientConfig
	}{
		{"user", ServerConfig{User: "router", Password: "s3cret"}, ClientConfig{User: "router", Password: "s3cret"}, ClientConfig{User: "router", Password: "nope"}},
		{"token", ServerConfig{Token: "t0ken"}, ClientConfig{Token: "t0ken"}, ClientConfig{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startServer(t, tc.srv)
			if nc, err := Connect(url, tc.bad); err == nil {
				nc.Close()
				t.Fatal("connected with bad credentials")
			}
			nc := connect(t, url, tc.good)
			l := newLeader(t, nc, "n", 1, -1)
			l.change(t, []blocks.BlockHash{key('a')}, nil)
			r := newSubscriber(t, nc, SubscriberConfig{})
			if err := r.Sync(t.Context(), []string{"n"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]ServerConfig{
		"user without password": {User: "u"},
		"user and token":        {User: "u", Password: "p", Token: "t"},
		"port":                  {Port: 70000},
	} {
		if _, _, err := StartServer(context.Background(), cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	url := startServer(t, ServerConfig{})
	nc := connect(t, url, ClientConfig{})
	keys := func() []blocks.BlockHash { return nil }
	for name, cfg := range map[string]PublisherConfig{
		"no model":       {Node: "n", Incarnation: 1, Keys: keys},
		"no node":        {Model: "m", Incarnation: 1, Keys: keys},
		"long node":      {Model: "m", Node: string(make([]byte, 256)), Incarnation: 1, Keys: keys},
		"no incarnation": {Model: "m", Node: "n", Keys: keys},
		"no keys":        {Model: "m", Node: "n", Incarnation: 1},
		"bad prefix":     {Model: "m", Node: "n", Incarnation: 1, Keys: keys, Prefix: "a.*"},
	} {
		if _, err := NewPublisher(nc, cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("publisher %s: %v", name, err)
		}
	}
	for name, cfg := range map[string]SubscriberConfig{
		"no model":  {},
		"bad index": {Model: "m", Index: IndexConfig{MaxNodes: -1}},
		"timeout":   {Model: "m", SnapshotTimeout: -1},
	} {
		if _, err := NewSubscriber(nc, cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("subscriber %s: %v", name, err)
		}
	}
}

func TestCloseTwice(t *testing.T) {
	url := startServer(t, ServerConfig{})
	nc := connect(t, url, ClientConfig{})
	l := newLeader(t, nc, "n", 1, 10*time.Millisecond)
	if err := l.pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.pub.Publish([]blocks.Event{{Kind: blocks.Stored}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	r := newSubscriber(t, nc, SubscriberConfig{})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestInProcess: a server without a TCP port serves in-process connections with
// credentials.
func TestInProcess(t *testing.T) {
	s, url, err := StartServer(t.Context(), ServerConfig{DontListen: true, User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if url != "" {
		t.Errorf("url %q without a listener", url)
	}
	// (A wrong password is refused too, but an in-process client only notices after
	// about 10 s; TestServerAuth checks refusal over TCP.)
	nc, err := s.Connect(ClientConfig{User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	l := newLeader(t, nc, "n", 1, -1)
	l.change(t, []blocks.BlockHash{key('a')}, nil)
	r := newSubscriber(t, nc, SubscriberConfig{})
	if err := r.Sync(t.Context(), []string{"n"}); err != nil {
		t.Fatal(err)
	}
	if err := agrees(r, l); err != nil {
		t.Fatal(err)
	}
}

// TestServerContext: the server stops when its context is done.
func TestServerContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, url, err := StartServer(ctx, ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if url != s.URL() || url == "" {
		t.Fatalf("url %q, URL() %q", url, s.URL())
	}
	cancel()
	waitFor(t, "server stops", func() error {
		nc, err := nats.Connect(url, nats.Timeout(100*time.Millisecond))
		if err == nil {
			nc.Close()
			return errors.New("still accepting")
		}
		return nil
	})
}

// TestConcurrentChurn: leaders publish concurrently, lose messages now and then and
// restart, while routers start, sync and drop nodes; once the leaders stop, every router
// converges on every leader's cache. Snapshots here race with Publish for real.
func TestConcurrentChurn(t *testing.T) {
	url := startServer(t, ServerConfig{})
	const nLeaders = 3
	leaders := make([]*fakeLeader, nLeaders)
	conns := make([]*nats.Conn, nLeaders)
	nodes := make([]string, nLeaders)
	for i := range leaders {
		conns[i] = connect(t, url, ClientConfig{})
		nodes[i] = fmt.Sprintf("leader-%d", i)
		leaders[i] = newLeader(t, conns[i], nodes[i], 1, 20*time.Millisecond)
	}
	r1 := newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{RetryWait: 10 * time.Millisecond, Logger: quiet})
	var mu sync.Mutex // protects leaders[i] replacement
	start := time.Now()
	var wg sync.WaitGroup
	for i := range nLeaders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 77))
			for step := range 150 {
				mu.Lock()
				l := leaders[i]
				mu.Unlock()
				switch r := rng.IntN(100); {
				case r < 5:
					l.loseNext()
				case r < 7 && step > 50:
					_ = l.pub.Close()
					nl := newLeader(t, conns[i], l.node, l.inc+1, 20*time.Millisecond)
					mu.Lock()
					leaders[i] = nl
					mu.Unlock()
					continue
				}
				l.randomChange(t, rng)
			}
		})
	}
	// A second router starts in the middle of the churn and syncs; the first drops a
	// node (as membership would on a false suspicion) and gets it back by snapshot.
	var r2 *Subscriber
	wg.Go(func() {
		for r1.Match(nil) == nil || len(r1.Nodes()) == 0 || r1.Nodes()[0].Keys == 0 {
			if time.Since(start) > 5*time.Second {
				break
			}
			time.Sleep(time.Millisecond)
		}
		r1.Drop(nodes[0])
		r2 = newSubscriber(t, connect(t, url, ClientConfig{}), SubscriberConfig{RetryWait: 10 * time.Millisecond, Logger: quiet})
		_ = r2.Sync(t.Context(), nodes)
	})
	wg.Wait()
	churned := time.Since(start)
	// Dropped and lossy nodes recover through heartbeats and snapshots.
	for _, r := range []*Subscriber{r1, r2} {
		waitFor(t, "routers converge after churn", func() error { return agrees(r, leaders...) })
	}
	if a, b := dump(r1), dump(r2); !maps.EqualFunc(a, b, maps.Equal) {
		t.Error("the two routers hold different indexes")
	}
	st := r1.Stats()
	t.Logf("churn %v, converged %v later; router 1: %+v", churned, time.Since(start)-churned, st)
	if st.Gaps == 0 || st.Resyncs == 0 {
		t.Error("the churn did not lose or resync")
	}
}
