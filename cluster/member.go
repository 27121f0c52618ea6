package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member is this process's membership in the cluster: it gossips this node's Meta and
// keeps the view of all alive nodes. Its methods are safe for concurrent use.
type Member struct {
	cfg  Config
	log  *slog.Logger
	name string // memberlist name of this incarnation: nodeName(meta)
	ml   *memberlist.Memberlist
	// self is this node's gossip address, read once after memberlist starts: the Nodes
	// memberlist hands out are its live records, which it rewrites without a lock
	// readers could take.
	self gossipAddr

	metaMu    sync.Mutex // protects meta and metaBytes; taken alone, never with mu
	meta      Meta
	metaBytes []byte // encodeMeta(meta); replaced, never modified in place

	// mu protects the fields below. The memberlist callbacks take it while memberlist
	// holds its own node lock, so no code may call into ml while holding mu.
	mu      sync.Mutex
	view    *view
	subs    map[*subscriber]struct{}
	peers   map[string]gossipAddr // alive memberlist names (self too) -> gossip address
	leaving map[string]time.Time  // memberlist names that sent a leave notice, and when
	acked   map[string]bool       // while this node leaves: names that acked its notice
	ackWake chan struct{}         // cap 1: acked grew
	refused map[string]string     // memberlist name -> reason already logged
	refusal error                 // a refusal seen while merging a seed's state in Join

	closed   atomic.Bool // Leave or Shutdown was called
	leaveMu  sync.Mutex  // held by Leave until memberlist has left: Shutdown waits for it
	stopOnce sync.Once
	stop     chan struct{} // closed when the member shuts down
	ready    chan struct{} // closed once ml is set
	dirty    chan struct{} // cap 1: Update changed meta, publishLoop has to gossip it
	wg       sync.WaitGroup
}

// Join starts gossiping meta with the settings of cfg and joins the cluster through
// cfg.Seeds, retrying until one answers or ctx ends (ErrNoSeed). ctx bounds joining
// only, not the member's life. A zero meta.Incarnation is set to the current time in ns.
// The returned Member runs until Leave or Shutdown.
func Join(ctx context.Context, cfg Config, meta Meta) (*Member, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if meta.Incarnation == 0 {
		meta.Incarnation = uint64(time.Now().UnixNano())
	}
	b, err := encodeMeta(meta)
	if err != nil {
		return nil, fmt.Errorf("cluster: join: %w", err)
	}
	m := &Member{
		cfg:       cfg,
		log:       cfg.Logger.With("node", meta.ID),
		name:      nodeName(meta),
		meta:      meta,
		metaBytes: b,
		view:      newView(),
		subs:      map[*subscriber]struct{}{},
		peers:     map[string]gossipAddr{},
		leaving:   map[string]time.Time{},
		refused:   map[string]string{},
		stop:      make(chan struct{}),
		ready:     make(chan struct{}),
		dirty:     make(chan struct{}, 1),
	}
	d := &delegate{m}
	mlc := memberlist.DefaultLANConfig()
	mlc.Name = m.name
	mlc.BindAddr, mlc.BindPort = cfg.BindAddr, cfg.BindPort
	mlc.AdvertiseAddr, mlc.AdvertisePort = cfg.AdvertiseAddr, cfg.BindPort
	mlc.ProbeInterval, mlc.ProbeTimeout = cfg.ProbeInterval, cfg.ProbeTimeout
	mlc.SuspicionMult = cfg.SuspicionMult
	mlc.GossipInterval = cfg.GossipInterval
	mlc.PushPullInterval = cfg.PushPullInterval
	mlc.TCPTimeout = cfg.StreamTimeout
	mlc.SecretKey = cfg.SecretKey
	mlc.Delegate, mlc.Events, mlc.Alive, mlc.Merge = d, d, d, d
	mlc.DelegateProtocolVersion, mlc.DelegateProtocolMin, mlc.DelegateProtocolMax = metaVersion, minMetaVersion, metaVersion
	mlc.Logger = memberlistLogger(cfg.Logger)
	ml, err := memberlist.Create(mlc)
	if err != nil {
		return nil, fmt.Errorf("cluster: start gossip on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	m.ml = ml
	// Nothing else writes the local node's record yet (no Update, no peer knows us).
	ln := ml.LocalNode()
	m.self = gossipAddr{slices.Clone(ln.Addr), ln.Port}
	close(m.ready)
	if err := m.joinSeeds(ctx); err != nil {
		m.shutdown()
		return nil, err
	}
	m.wg.Add(1)
	go m.publishLoop()
	if len(cfg.Seeds) > 0 && cfg.RejoinInterval > 0 {
		m.wg.Add(1)
		go m.rejoinLoop()
	}
	m.log.Info("cluster: member started", "addr", m.Addr(), "incarnation", meta.Incarnation,
		"members", len(m.Members()), "encrypted", len(cfg.SecretKey) > 0)
	return m, nil
}

// Addr returns the gossip address other nodes reach this one at (host:port), with the
// port actually bound when Config.BindPort was 0. Use it as another node's seed.
func (m *Member) Addr() string { return m.self.String() }

// Self returns this node's current Meta (with its Incarnation filled in).
func (m *Member) Self() Meta {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	return m.meta
}

// Update gossips changed metadata for this node. meta.ID must be unchanged and
// meta.Incarnation unchanged or 0 (ErrBadMeta); a meta that encodes above MaxMetaSize
// is refused with ErrMetaTooLarge and the old one stays. Update does not wait for the
// network: Self has the change at once, a background goroutine gossips it (in this
// node's Members within milliseconds, in the others' within a few GossipIntervals), and
// Updates faster than it goes out coalesce into the latest.
func (m *Member) Update(meta Meta) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if err := m.setMeta(meta); err != nil {
		return fmt.Errorf("cluster: update: %w", err)
	}
	select {
	case m.dirty <- struct{}{}:
	default: // a gossip of the latest meta is already due
	}
	return nil
}

// setMeta validates and stores a new Meta for this node.
func (m *Member) setMeta(meta Meta) error {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	cur := m.meta
	if meta.Incarnation == 0 {
		meta.Incarnation = cur.Incarnation
	}
	if meta.ID != cur.ID || meta.Incarnation != cur.Incarnation {
		return fmt.Errorf("%w: ID and Incarnation are fixed for a member's life (have %q/%d, got %q/%d)",
			ErrBadMeta, cur.ID, cur.Incarnation, meta.ID, meta.Incarnation)
	}
	b, err := encodeMeta(meta)
	if err != nil {
		return err
	}
	m.meta, m.metaBytes = meta, b
	return nil
}

// publishLoop gossips this node's Meta after each Update, one at a time.
func (m *Member) publishLoop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stop:
			return
		case <-m.dirty:
		}
		// UpdateNode returns once the broadcast went out or after the timeout, which
		// only paces this loop: the broadcast stays queued either way.
		if err := m.ml.UpdateNode(2 * m.cfg.GossipInterval); err != nil {
			m.log.Debug("cluster: update broadcast still queued", "err", err)
		}
	}
}

// Members returns the current incarnation of every alive node, this one included,
// sorted by ID.
func (m *Member) Members() []Meta {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view.members()
}

// Subscribe returns a channel of membership events and a function that ends the
// subscription. The first events are a Join for every current member (so no separate
// Members call is needed and nothing falls in between), then every change in order.
// Events wait in a queue per subscriber, so a slow reader never blocks gossip; queued
// Updates of a node coalesce into its latest Meta, other kinds are never dropped (see
// the package doc). The channel is closed by cancel, Leave or Shutdown; events still
// queued then are dropped. Call cancel when done reading, or the queue grows.
func (m *Member) Subscribe() (<-chan Event, func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := m.view.members()
	initial := make([]Event, len(ms))
	for i, meta := range ms {
		initial[i] = Event{KindJoin, meta}
	}
	s := newSubscriber(initial)
	select {
	case <-m.stop:
		s.close()
	default:
		m.subs[s] = struct{}{}
	}
	return s.out, func() {
		m.mu.Lock()
		delete(m.subs, s)
		m.mu.Unlock()
		s.close()
	}
}

// Leave leaves the cluster gracefully: every other node is told first and acks, so that
// it reports Leave rather than Dead, then the leave is gossiped and the member shut
// down. ctx bounds the whole: half of the time to its deadline at most waits for acks
// (StreamTimeout when it has no deadline), the rest for the gossip. Once Leave or
// Shutdown has been called, Leave returns ErrClosed.
func (m *Member) Leave(ctx context.Context) error {
	if !m.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	defer m.shutdown()
	m.leaveMu.Lock() // memberlist panics on a Leave after its Shutdown
	defer m.leaveMu.Unlock()
	m.sendLeaveNotices(ctx)
	timeout := m.cfg.StreamTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	if err := m.ml.Leave(timeout); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	m.log.Info("cluster: left")
	return nil
}

// Shutdown stops the member abruptly, as a crash would: no one is told, and the other
// nodes declare it Dead once it stops answering probes. During a Leave it waits for the
// Leave to end. Idempotent.
func (m *Member) Shutdown() error {
	m.closed.Store(true)
	m.leaveMu.Lock()
	defer m.leaveMu.Unlock()
	return m.shutdown()
}

func (m *Member) shutdown() error {
	var err error
	m.stopOnce.Do(func() {
		m.mu.Lock()
		close(m.stop)
		for s := range m.subs {
			s.close()
		}
		m.subs = nil
		m.mu.Unlock()
		err = m.ml.Shutdown()
		m.wg.Wait()
	})
	if err != nil {
		return fmt.Errorf("cluster: shutdown: %w", err)
	}
	return nil
}

// gossipAddr is where a memberlist node listens.
type gossipAddr struct {
	ip   net.IP
	port uint16
}

func (a gossipAddr) String() string {
	return net.JoinHostPort(a.ip.String(), strconv.Itoa(int(a.port)))
}

// peerNodes returns a memberlist Node (name and address only) for every other alive node.
func (m *Member) peerNodes() []*memberlist.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*memberlist.Node
	for name, a := range m.peers {
		if name != m.name {
			out = append(out, &memberlist.Node{Name: name, Addr: a.ip, Port: a.port})
		}
	}
	return out
}
