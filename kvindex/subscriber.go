package kvindex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/nats-io/nats.go"
)

// SubscriberConfig configures a router's Subscriber. Zero fields take the defaults; Model
// is required.
type SubscriberConfig struct {
	// Model names the served model in subjects, as the publishers' PublisherConfig.Model.
	Model string
	// Prefix of the subjects. Default DefaultPrefix.
	Prefix string
	// Index bounds the index and weighs Pick.
	Index IndexConfig
	// SnapshotTimeout bounds one snapshot request, all parts. Default 2 s.
	SnapshotTimeout time.Duration
	// RetryWait is the pause before asking a publisher for a snapshot again after a
	// failed request, while its batches still say one is needed. Default 1 s.
	RetryWait time.Duration
	// Logger receives warnings: malformed messages (at most one line a second, with a
	// count of the lines left out) and failed snapshots. Default slog.Default().
	Logger *slog.Logger
}

func (c SubscriberConfig) withDefaults() (SubscriberConfig, error) {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.SnapshotTimeout == 0 {
		c.SnapshotTimeout = 2 * time.Second
	}
	if c.RetryWait == 0 {
		c.RetryWait = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Model == "":
		return c, fmt.Errorf("%w: empty model", ErrBadConfig)
	case !validPrefix(c.Prefix):
		return c, fmt.Errorf("%w: subject prefix %q", ErrBadConfig, c.Prefix)
	case c.SnapshotTimeout < 0 || c.RetryWait < 0:
		return c, fmt.Errorf("%w: negative timeout", ErrBadConfig)
	}
	return c, nil
}

// Subscriber keeps a router's Index current from every publisher's events on NATS: it
// applies batches, fetches a snapshot of a publisher whenever its index entries are
// unknown (a sequence gap, a publisher first heard of mid-stream, Sync), and ignores
// malformed messages. All methods are safe for concurrent use.
type Subscriber struct {
	cfg SubscriberConfig
	nc  *nats.Conn
	sub *nats.Subscription
	ctx context.Context // done on Close
	end context.CancelFunc
	wg  sync.WaitGroup // resync goroutines

	mu       sync.Mutex // protects ix, inflight, lastFail
	ix       *Index
	inflight map[string]bool      // nodes with a snapshot request under way
	lastFail map[string]time.Time // when a node's last snapshot request failed

	batch Batch   // decode buffer; used only on the subscription's goroutine
	bad   rateLog // malformed messages
}

// NewSubscriber subscribes to the events of every publisher of cfg.Model on nc and
// returns once the server has the subscription, so no event sent after it returns is
// missed. The caller keeps owning nc. Call Sync with the publishers membership knows.
func NewSubscriber(nc *nats.Conn, cfg SubscriberConfig) (*Subscriber, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ix, err := NewIndex(cfg.Index)
	if err != nil {
		return nil, err
	}
	s := &Subscriber{cfg: cfg, nc: nc, ix: ix, inflight: make(map[string]bool), lastFail: make(map[string]time.Time)}
	s.ctx, s.end = context.WithCancel(context.Background())
	s.sub, err = nc.Subscribe(eventWildcard(cfg.Prefix, cfg.Model), s.onBatch)
	if err != nil {
		return nil, fmt.Errorf("kvindex: subscribe: %w", err)
	}
	// Let the subscription buffer generously: a drop is a gap and costs a snapshot.
	_ = s.sub.SetPendingLimits(1<<20, 256<<20)
	if err := nc.Flush(); err != nil {
		_ = s.sub.Unsubscribe()
		return nil, fmt.Errorf("kvindex: subscribe flush: %w", err)
	}
	return s, nil
}

// onBatch handles one event message. nats.go calls it serially.
func (s *Subscriber) onBatch(m *nats.Msg) {
	b := &s.batch
	if err := decodeBatch(m.Data, b); err != nil {
		s.logBad(m.Subject, err)
		return
	}
	if last := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]; last != subjectToken(b.Node) {
		s.logBad(m.Subject, fmt.Errorf("%w: batch of node %q on another node's subject", ErrBadMessage, b.Node))
		return
	}
	s.mu.Lock()
	r := s.ix.Apply(b)
	s.mu.Unlock()
	if r == NeedResync {
		s.resync(b.Node)
	}
}

// logBad counts a malformed message and logs it, at most once a second.
func (s *Subscriber) logBad(subject string, err error) {
	s.bad.warn(s.cfg.Logger, "kvindex: ignored a malformed message", "subject", subject, "err", err)
}

// resync starts fetching node's snapshot in the background unless one is under way or
// the last attempt failed less than RetryWait ago.
func (s *Subscriber) resync(node string) {
	s.mu.Lock()
	if s.inflight[node] || s.ctx.Err() != nil || time.Since(s.lastFail[node]) < s.cfg.RetryWait {
		s.mu.Unlock()
		return
	}
	s.inflight[node] = true
	s.wg.Add(1)
	if len(s.lastFail) > 1024 { // forget old failures (nodes long dead)
		for n, at := range s.lastFail {
			if time.Since(at) >= s.cfg.RetryWait {
				delete(s.lastFail, n)
			}
		}
	}
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		err := s.fetchAndInstall(s.ctx, node)
		s.mu.Lock()
		delete(s.inflight, node)
		if err != nil {
			s.lastFail[node] = time.Now()
		} else {
			delete(s.lastFail, node)
		}
		s.mu.Unlock()
		if err != nil && s.ctx.Err() == nil {
			s.cfg.Logger.Warn("kvindex: resync failed", "node", node, "err", err)
		}
	}()
}

// fetchAndInstall asks node for a snapshot and installs it. If the buffered batches
// still leave a gap it asks again, a few times.
func (s *Subscriber) fetchAndInstall(ctx context.Context, node string) error {
	for range 3 {
		snap, err := s.fetch(ctx, node)
		if err != nil {
			return err
		}
		s.mu.Lock()
		r := s.ix.Resync(snap)
		s.mu.Unlock()
		if r != NeedResync {
			return nil
		}
	}
	return fmt.Errorf("%w: %s: events keep missing after snapshots", ErrSnapshot, node)
}

// maxParts bounds the parts of one snapshot: 2^28 keys at the embedded server's 8 MiB
// payload limit, 2^25 at NATS' default 1 MiB.
const maxParts = 1024

// fetch requests node's snapshot and gathers its parts.
func (s *Subscriber) fetch(ctx context.Context, node string) (*Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SnapshotTimeout)
	defer cancel()
	inbox := s.nc.NewRespInbox()
	// A small channel of our own: SubscribeSync's default one is 512 KiB, cleared per
	// request. Parts beyond its room are dropped by the client and the request fails.
	replies := make(chan *nats.Msg, maxParts)
	sub, err := s.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSnapshot, node, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.PublishRequest(snapshotSubject(s.cfg.Prefix, s.cfg.Model, node), inbox, encodeRequest()); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSnapshot, node, err)
	}
	var snap *Snapshot
	var part snapshotPart
	got, parts := 0, 0
	for {
		var m *nats.Msg
		select {
		case m = <-replies:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s: %d parts received: %w", ErrSnapshot, node, got, ctx.Err())
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			return nil, fmt.Errorf("%w: %s: %w", ErrSnapshot, node, nats.ErrNoResponders)
		}
		if err := decodeSnapshotPart(m.Data, &part); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrSnapshot, node, err)
		}
		if snap == nil {
			if part.Node != node || part.parts > maxParts {
				return nil, fmt.Errorf("%w: asked %q, answered by %q in %d parts", ErrSnapshot, node, part.Node, part.parts)
			}
			parts = part.parts
			// All but the last part are full; presize, but not on a stranger's word alone.
			snap = &Snapshot{Node: part.Node, Incarnation: part.Incarnation, Seq: part.Seq,
				Keys: make([]blocks.BlockHash, 0, min(part.parts*len(part.Keys), 1<<20))}
		}
		if part.Node != snap.Node || part.Incarnation != snap.Incarnation || part.Seq != snap.Seq || part.part != got || part.parts != parts {
			return nil, fmt.Errorf("%w: %s: inconsistent part %d of %d", ErrSnapshot, node, part.part, part.parts)
		}
		snap.Keys = append(snap.Keys, part.Keys...)
		got++
		if got == parts {
			return snap, nil
		}
	}
}

// Sync asks each node for a snapshot and installs it; until then the node's batches are
// buffered and it matches nothing. The router calls it on start with every publisher
// membership knows (pipeline leaders), instead of waiting for their events. It returns
// the nodes' errors joined; nodes that answered are installed regardless.
func (s *Subscriber) Sync(ctx context.Context, nodes []string) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		s.mu.Lock()
		ok := s.ix.BeginResync(n)
		s.mu.Unlock()
		if !ok {
			errs[i] = fmt.Errorf("%w: %s: index full (MaxNodes)", ErrSnapshot, n)
			continue
		}
		wg.Go(func() { errs[i] = s.fetchAndInstall(ctx, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Drop forgets all of node's entries at once; membership calls it when a node dies,
// leaves, or comes back with a new incarnation.
func (s *Subscriber) Drop(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ix.Drop(node)
}

// Match returns, for every node holding keys[0], the number of leading keys it holds.
func (s *Subscriber) Match(keys []blocks.BlockHash) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ix.Match(keys)
}

// Pick chooses among cands for a prompt with these keys; see Index.Pick.
func (s *Subscriber) Pick(cands []Candidate, keys []blocks.BlockHash) (best, matched int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ix.Pick(cands, keys)
}

// Nodes lists the tracked publishers; see Index.Nodes.
func (s *Subscriber) Nodes() []NodeState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ix.Nodes()
}

// SubscriberStats are the index's counters and the malformed messages seen.
type SubscriberStats struct {
	Stats
	Malformed uint64
}

// Stats returns the counters.
func (s *Subscriber) Stats() SubscriberStats {
	s.mu.Lock()
	st := SubscriberStats{Stats: s.ix.Stats()}
	s.mu.Unlock()
	st.Malformed = s.bad.total()
	return st
}

// Close unsubscribes, cancels snapshot requests under way and waits for them. It does
// not close the NATS connection.
func (s *Subscriber) Close() error {
	s.mu.Lock() // so that resync sees the context done before it adds to wg
	s.end()
	s.mu.Unlock()
	err := s.sub.Unsubscribe()
	s.wg.Wait()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("kvindex: unsubscribe: %w", err)
	}
	return nil
}
