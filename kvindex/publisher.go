package kvindex

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/nats-io/nats.go"
)

// PublisherConfig configures a pipeline leader's Publisher. Zero fields take the defaults;
// Model, Node, Incarnation and Keys are required.
type PublisherConfig struct {
	// Model names the served model in subjects; the same on every node of one model.
	Model string
	// Node is this publisher's node ID (1..255 bytes), as membership names it.
	Node string
	// Incarnation must be nonzero and grow across restarts of Node (the process start
	// time in nanoseconds will do): subscribers ignore messages of older incarnations and
	// drop a node's entries when a newer one appears.
	Incarnation uint64
	// Keys lists every key the prefix cache holds, for snapshot requests. It is called on
	// a NATS goroutine, concurrently with Publish, and must return keys held at an instant
	// after every event already passed to Publish was taken from the cache (events taken
	// but not yet published are fine: replaying them on the snapshot is harmless). It may
	// block briefly (take the engine's lock) but must not call the Publisher.
	Keys func() []blocks.BlockHash
	// Prefix of the subjects. Default DefaultPrefix.
	Prefix string
	// Heartbeat is the interval of empty batches that tell subscribers the next sequence
	// number, so a lost last batch is noticed and a late subscriber finds this publisher.
	// Default 1 s; negative disables.
	Heartbeat time.Duration
	// Logger receives the publisher's warnings. Default slog.Default().
	Logger *slog.Logger
}

func (c PublisherConfig) withDefaults() (PublisherConfig, error) {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := checkNode(c.Node); err != nil {
		return c, err
	}
	switch {
	case c.Model == "":
		return c, fmt.Errorf("%w: empty model", ErrBadConfig)
	case c.Incarnation == 0:
		return c, fmt.Errorf("%w: incarnation 0", ErrBadConfig)
	case c.Keys == nil:
		return c, fmt.Errorf("%w: no Keys callback", ErrBadConfig)
	case !validPrefix(c.Prefix):
		return c, fmt.Errorf("%w: subject prefix %q", ErrBadConfig, c.Prefix)
	}
	return c, nil
}

// Publisher sends a pipeline leader's prefix-cache events to NATS, numbered from 1 in
// this incarnation, and answers snapshot requests. Publish is safe for concurrent use,
// though one goroutine (the engine loop) normally calls it.
type Publisher struct {
	cfg     PublisherConfig
	nc      *nats.Conn
	subject string
	sub     *nats.Subscription
	stop    chan struct{}
	done    chan struct{}

	mu     sync.Mutex // protects the fields below
	seq    uint64     // last sequence number used
	quiet  bool       // nothing published since the last heartbeat tick
	closed bool
	buf    []byte  // encoding buffer
	events []Event // conversion buffer

	bad rateLog // malformed snapshot requests
}

// NewPublisher starts serving snapshot requests on nc and returns the Publisher. The
// caller keeps owning nc.
func NewPublisher(nc *nats.Conn, cfg PublisherConfig) (*Publisher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		cfg:     cfg,
		nc:      nc,
		subject: eventSubject(cfg.Prefix, cfg.Model, cfg.Node),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	p.sub, err = nc.Subscribe(snapshotSubject(cfg.Prefix, cfg.Model, cfg.Node), p.serveSnapshot)
	if err != nil {
		return nil, fmt.Errorf("kvindex: publisher %s: subscribe: %w", cfg.Node, err)
	}
	if err := nc.Flush(); err != nil {
		_ = p.sub.Unsubscribe()
		return nil, fmt.Errorf("kvindex: publisher %s: flush: %w", cfg.Node, err)
	}
	go p.heartbeat()
	return p, nil
}

// Publish sends events (from blocks.Cache.TakeEvents) in order, split into messages
// that fit the server's payload limit. Sequence numbers are used even when sending
// fails, so subscribers see the loss as a gap and resync. It returns ErrClosed after
// Close, or the first send error; it panics on an event kind other than Stored or
// Removed.
func (p *Publisher) Publish(events []blocks.Event) error {
	if len(events) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.events = p.events[:0]
	for _, e := range events {
		if e.Kind != blocks.Stored && e.Kind != blocks.Removed {
			panic(fmt.Sprintf("kvindex: Publish: event kind %d", e.Kind))
		}
		p.events = append(p.events, Event{Kind: e.Kind, Key: e.Hash})
	}
	return p.sendLocked(p.events)
}

// sendLocked numbers and sends events in messages of at most the payload limit.
func (p *Publisher) sendLocked(events []Event) error {
	per := max(1, (int(p.nc.MaxPayload())-batchFixed-len(p.cfg.Node))/eventMaxLen)
	var first error
	for len(events) > 0 {
		n := min(per, len(events))
		b := Batch{Node: p.cfg.Node, Incarnation: p.cfg.Incarnation, First: p.seq + 1, Events: events[:n]}
		p.seq += uint64(n)
		p.buf = appendBatch(p.buf[:0], &b)
		if err := p.nc.Publish(p.subject, p.buf); err != nil && first == nil {
			first = fmt.Errorf("kvindex: publish %d events from %s: %w", n, p.cfg.Node, err)
		}
		events = events[n:]
	}
	p.quiet = false
	return first
}

// Seq is the last sequence number used (0 before the first Publish).
func (p *Publisher) Seq() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

func (p *Publisher) heartbeat() {
	defer close(p.done)
	if p.cfg.Heartbeat < 0 {
		<-p.stop
		return
	}
	t := time.NewTicker(p.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		if p.quiet && !p.closed {
			b := Batch{Node: p.cfg.Node, Incarnation: p.cfg.Incarnation, First: p.seq + 1}
			p.buf = appendBatch(p.buf[:0], &b)
			if err := p.nc.Publish(p.subject, p.buf); err != nil {
				p.cfg.Logger.Debug("kvindex: heartbeat not sent", "node", p.cfg.Node, "err", err)
			}
		}
		p.quiet = true
		p.mu.Unlock()
	}
}

// serveSnapshot answers a snapshot request with the keys Keys lists, in as many parts as
// the payload limit needs. It runs on the subscription's goroutine.
func (p *Publisher) serveSnapshot(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	if err := decodeRequest(m.Data); err != nil {
		p.bad.warn(p.cfg.Logger, "kvindex: ignored a bad snapshot request", "node", p.cfg.Node, "err", err)
		return
	}
	// Read the sequence number before listing the keys: the keys then reflect at least
	// every event up to it (see PublisherConfig.Keys).
	seq := p.Seq()
	keys := p.cfg.Keys()
	s := Snapshot{Node: p.cfg.Node, Incarnation: p.cfg.Incarnation, Seq: seq, Keys: keys}
	per := max(1, (int(p.nc.MaxPayload())-snapshotFixed-len(p.cfg.Node))/keyLen)
	parts := max(1, (len(keys)+per-1)/per)
	buf := make([]byte, 0, snapshotFixed+len(s.Node)+min(per, len(keys))*keyLen)
	for i := range parts {
		part := keys[min(i*per, len(keys)):min((i+1)*per, len(keys))]
		buf = appendSnapshotPart(buf[:0], &s, part, i, parts)
		if err := p.nc.Publish(m.Reply, buf); err != nil {
			p.cfg.Logger.Warn("kvindex: snapshot reply failed", "node", p.cfg.Node, "err", err)
			return
		}
	}
}

// Close stops heartbeats and, once the requests already received are answered, snapshot
// answers; later Publish calls return ErrClosed. It does not close the NATS connection.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	// Drain rather than unsubscribe: requests already delivered to this client are still
	// answered (with this incarnation, which subscribers order correctly), instead of
	// being dropped and left to time out.
	if err := p.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("kvindex: publisher %s: drain: %w", p.cfg.Node, err)
	}
	return nil
}
