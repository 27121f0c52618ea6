package leader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/keepalive"

	"github.com/kvmesh/kvmesh/engine"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// Client calls one leader. It is safe for concurrent use; each Submit is one stream on
// a shared connection.
type Client struct {
	cfg  ClientConfig
	addr string
	conn *grpc.ClientConn
	api  pb.LeaderClient

	maxBuffer int // bounds the events buffered for one request (maxBuffer; tests lower it)
}

// Status is a leader's identity and load (the Status call).
type Status struct {
	// Protocol is the minor revision of kvmesh.v1 the leader speaks.
	Protocol uint32
	// NodeID and Incarnation name the node and the start of its process.
	NodeID      string
	Incarnation uint64
	// Model is the served model's identity.
	Model string
	// FirstLayer and EndLayer are the leader's layers, [FirstLayer, EndLayer).
	FirstLayer, EndLayer int
	// BlocksTotal, BlocksFree and BlocksCached count KV blocks as engine.Stats does.
	BlocksTotal, BlocksFree, BlocksCached int
	// Running, Waiting and Swapped count sequences and queued requests as engine.Stats.
	Running, Waiting, Swapped int
	// Ready is whether the leader takes requests.
	Ready bool
	// PrefixQueried and PrefixHit count the prompt tokens looked up in the prefix cache
	// since the leader started, and those found, as engine.Stats does.
	PrefixQueried, PrefixHit int64
	// SwapBytesOut and SwapBytesIn count the bytes the leader's disk tier moved, as
	// engine.Stats does.
	SwapBytesOut, SwapBytesIn int64
}

// Dial connects to the leader at addr (host:port) and checks it with a Status call, so
// an unreachable leader or a TLS mismatch (ErrUnreachable), or with cfg.Model a leader of
// another model (ErrWrongModel), fails here. ctx bounds the dial only. Later calls
// reconnect by themselves when the connection drops.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	creds, err := clientCredentials(cfg.TLS)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: cfg.PingInterval, Timeout: cfg.PingTimeout, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: cfg.MaxReconnectDelay},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("leader: dial %s: %w", addr, err)
	}
	c := &Client{cfg: cfg, addr: addr, conn: conn, api: pb.NewLeaderClient(conn), maxBuffer: maxBuffer}
	st, err := c.api.Status(ctx, &pb.StatusRequest{})
	switch {
	case err != nil && ctx.Err() == nil && !reported(err):
		err = fmt.Errorf("leader: dial %s: %w: %v", addr, ErrUnreachable, err)
	case err != nil:
		err = fmt.Errorf("leader: dial: %w", fromStatus(ctx, addr, err))
	case cfg.Model != "" && st.Model != cfg.Model:
		err = fmt.Errorf("leader: dial: %w: %s serves %q, want %q", ErrWrongModel, addr, st.Model, cfg.Model)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Addr is the address the client dialled.
func (c *Client) Addr() string { return c.addr }

// Close closes the connection; streams still open end with ErrBroken.
func (c *Client) Close() error { return c.conn.Close() }

// Status asks the leader for its identity and load.
func (c *Client) Status(ctx context.Context) (Status, error) {
	r, err := c.api.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		return Status{}, fromStatus(ctx, c.addr, err)
	}
	return Status{
		Protocol:     r.Protocol,
		NodeID:       r.NodeId,
		Incarnation:  r.Incarnation,
		Model:        r.Model,
		FirstLayer:   int(r.GetLayers().GetStart()),
		EndLayer:     int(r.GetLayers().GetEnd()),
		BlocksTotal:  int(r.KvBlocksTotal),
		BlocksFree:   int(r.KvBlocksFree),
		BlocksCached: int(r.KvBlocksCached),
		Running:      int(r.Running),
		Waiting:      int(r.Waiting),
		Swapped:      int(r.Swapped),
		Ready:        r.Ready,

		PrefixQueried: int64(r.PrefixQueriedTokens),
		PrefixHit:     int64(r.PrefixHitTokens),
		SwapBytesOut:  int64(r.SwapBytesOut),
		SwapBytesIn:   int64(r.SwapBytesIn),
	}, nil
}

// errSilent is the cause of a stream's cancellation when the leader said nothing for
// DeadAfter.
var errSilent = errors.New("leader: silent")

// Submit runs req on the leader, as engine.Engine.Submit does locally: it returns once
// the leader queued the request (or with the leader's refusal, wrapping the engine's
// sentinel), then the request's events arrive on the channel, which is closed after the
// last one. A stream that breaks (the leader died, the connection dropped, the leader
// fell silent for DeadAfter) ends with an Event whose Err wraps ErrBroken. Cancelling
// ctx cancels the request on the leader, which frees its blocks.
func (c *Client) Submit(ctx context.Context, req engine.Request) (<-chan engine.Event, error) {
	if req.N == 0 {
		req.N = 1
	}
	in, err := toProto(req, c.cfg.Model, c.cfg.Heartbeat)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancelCause(ctx)
	watchdog := time.AfterFunc(c.cfg.DeadAfter, func() { cancel(errSilent) })
	stream, err := c.api.Generate(sctx, in)
	if err == nil {
		err = accepted(stream)
	}
	if err != nil {
		watchdog.Stop()
		err = c.streamError(ctx, sctx, err)
		cancel(nil)
		return nil, err
	}
	watchdog.Reset(c.cfg.DeadAfter)
	// Buffered for every event the request can produce, as the engine's channel is, so
	// the stream is drained at the leader's pace whatever the reader does; past
	// maxBuffer, a slow reader slows the stream instead (the leader's engine still
	// never waits: its own channel holds every event).
	events := make(chan engine.Event, max(min(req.N*(req.MaxTokens+1)+1, c.maxBuffer), 1))
	go func() {
		defer close(events)
		defer cancel(nil)
		defer watchdog.Stop()
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				return
			}
			if err == nil {
				watchdog.Reset(c.cfg.DeadAfter)
				if err = c.deliverAll(sctx, events, msg, req.N, watchdog); err == nil {
					continue // events delivered, or a heartbeat
				}
			}
			// The last event waits for a slow reader, but not for one that left.
			last := engine.Event{Err: c.streamError(ctx, sctx, err)}
			select {
			case events <- last:
			default:
				select {
				case events <- last:
				case <-ctx.Done():
				}
			}
			return
		}
	}()
	return events, nil
}

// maxBuffer bounds the events a Client buffers for one request.
const maxBuffer = 1 << 14

// deliverAll sends the events of msg, a reply for a request of n samples, on events.
func (c *Client) deliverAll(ctx context.Context, events chan<- engine.Event, msg *pb.GenerateReply, n int, watchdog *time.Timer) error {
	for _, e := range msg.Events {
		ev, err := eventFromProto(e, n)
		if err != nil {
			return fmt.Errorf("leader %s: %w: protocol error: %v", c.addr, ErrBroken, err)
		}
		if err := deliver(ctx, events, ev, watchdog, c.cfg.DeadAfter); err != nil {
			return err
		}
	}
	return nil
}

// deliver sends ev on events. When the reader lags and the buffer is full, the watchdog
// is paused while waiting: a slow reader is not a silent leader.
func deliver(ctx context.Context, events chan<- engine.Event, ev engine.Event, watchdog *time.Timer, deadAfter time.Duration) error {
	select {
	case events <- ev:
		return nil
	default:
	}
	paused := watchdog.Stop()
	select {
	case events <- ev:
		if paused {
			watchdog.Reset(deadAfter)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// accepted waits for the response header and returns nil if the leader queued the
// request, or the error the stream ended with.
func accepted(stream grpc.ServerStreamingClient[pb.GenerateReply]) error {
	md, err := stream.Header()
	if err == nil && len(md.Get(acceptedKey)) > 0 {
		return nil
	}
	if _, rerr := stream.Recv(); rerr != nil && rerr != io.EOF {
		return rerr
	}
	if err != nil {
		return err
	}
	return errors.New("the leader answered without accepting the request (no kvmesh-accepted header)")
}

// streamError classifies the error of a stream whose context is sctx, made from the
// caller's ctx: the caller's own cancellation, a silent leader, or what fromStatus says.
func (c *Client) streamError(ctx, sctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(context.Cause(sctx), errSilent) {
		return fmt.Errorf("leader %s: %w: no message for %v", c.addr, ErrBroken, c.cfg.DeadAfter)
	}
	if errors.Is(err, ErrBroken) {
		return err
	}
	return fromStatus(ctx, c.addr, err)
}
