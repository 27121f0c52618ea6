package leader

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/kvmesh/kvmesh/engine"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// Engine is what a Server serves: the scheduler of one pipeline (engine.Engine).
type Engine interface {
	// Submit queues a request; see engine.Engine.Submit.
	Submit(ctx context.Context, req engine.Request) (<-chan engine.Event, error)
	// Stats is the engine's last published snapshot.
	Stats() engine.Stats
	// Ready reports whether the engine takes requests; it must not block.
	Ready() bool
}

var _ Engine = (*engine.Engine)(nil)

// Server serves the Leader service and the standard gRPC health service over an engine.
// It is a grpc.ServiceRegistrar, so other services (the stage protocol) can share its
// port: register them before Serve.
type Server struct {
	pb.UnimplementedLeaderServer
	cfg    ServerConfig
	eng    Engine
	grpc   *grpc.Server
	health *health.Server

	stopOnce sync.Once
	stop     chan struct{} // closed by Stop and Shutdown: ends the health poller
	polled   chan struct{} // closed when the health poller has exited
}

var _ pb.LeaderServer = (*Server)(nil)

// NewServer returns a Server over eng. Serve it with Serve; end it with Shutdown or Stop.
// The engine stays the caller's: the Server never shuts it down.
func NewServer(eng Engine, cfg ServerConfig) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	creds, err := serverCredentials(cfg.TLS)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		eng:    eng,
		health: health.NewServer(),
		stop:   make(chan struct{}),
		polled: make(chan struct{}),
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(creds),
		grpc.ConnectionTimeout(cfg.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.PingInterval, Timeout: cfg.PingTimeout}),
		// Clients ping idle connections every 10 s at the most (gRPC's floor); allow
		// some slack before calling it abuse.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	pb.RegisterLeaderServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.pollHealth()
	go s.healthLoop()
	return s, nil
}

// RegisterService registers another service on the server's port (before Serve).
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.grpc.RegisterService(desc, impl)
}

// Serve accepts connections on ln until Stop or Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.grpc.Serve(ln); err != nil {
		return fmt.Errorf("leader: serve: %w", err)
	}
	return nil
}

// Shutdown stops the server gracefully: health turns NOT_SERVING, no new calls are taken,
// and running streams may finish until ctx ends; then the rest are cut off as by Stop.
func (s *Server) Shutdown(ctx context.Context) error {
	s.endHealth()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return ctx.Err()
	}
}

// Stop closes every connection and listener at once: running streams end (their clients
// see ErrBroken) and their requests are cancelled in the engine.
func (s *Server) Stop() {
	s.endHealth()
	s.grpc.Stop()
}

// endHealth stops the poller and reports NOT_SERVING from now on.
func (s *Server) endHealth() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.polled
	s.health.Shutdown()
}

// healthLoop keeps the health service's status in step with the engine's Ready.
func (s *Server) healthLoop() {
	defer close(s.polled)
	t := time.NewTicker(s.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.pollHealth()
		}
	}
}

// pollHealth sets the health status, overall and of the Leader service, from Ready.
func (s *Server) pollHealth() {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if s.eng.Ready() {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(pb.Leader_ServiceDesc.ServiceName, st)
}

// Status implements the Leader service.
func (s *Server) Status(context.Context, *pb.StatusRequest) (*pb.StatusReply, error) {
	st := s.eng.Stats()
	return &pb.StatusReply{
		Protocol:       Protocol,
		NodeId:         s.cfg.NodeID,
		Incarnation:    s.cfg.Incarnation,
		Model:          s.cfg.Model,
		Layers:         &pb.LayerRange{Start: uint32(s.cfg.FirstLayer), End: uint32(s.cfg.EndLayer)},
		KvBlocksTotal:  uint32(st.BlocksTotal),
		KvBlocksFree:   uint32(st.BlocksFree),
		KvBlocksCached: uint32(st.BlocksCached),
		Running:        uint32(st.Running),
		Waiting:        uint32(st.Waiting),
		Swapped:        uint32(st.Swapped),
		Ready:          s.eng.Ready(),

		PrefixQueriedTokens: uint64(st.PrefixQueried),
		PrefixHitTokens:     uint64(st.PrefixHit),
		SwapBytesOut:        uint64(st.SwapBytesOut),
		SwapBytesIn:         uint64(st.SwapBytesIn),
	}, nil
}

// Generate implements the Leader service: submit, send the accepted header, then relay
// the engine's events (and heartbeats when quiet) until the request ends. Each reply
// carries every event the engine has handed out by then, up to maxReply. Returning
// cancels the request's context, so a client that went away frees its blocks.
func (s *Server) Generate(in *pb.GenerateRequest, stream grpc.ServerStreamingServer[pb.GenerateReply]) error {
	if in.Model != "" && s.cfg.Model != "" && in.Model != s.cfg.Model {
		err := fmt.Errorf("%w: this leader serves %q, the request is for %q", ErrWrongModel, s.cfg.Model, in.Model)
		s.cfg.Logger.Warn("refused a request for another model", "served", s.cfg.Model, "requested", in.Model)
		return toStatus(err)
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	events, err := s.eng.Submit(ctx, fromProto(in))
	if err != nil {
		return toStatus(err)
	}
	if err := stream.SendHeader(metadata.Pairs(acceptedKey, "1")); err != nil {
		return err
	}
	var beat <-chan time.Time
	var timer *time.Timer
	interval := time.Duration(max(in.HeartbeatMs, minHeartbeatMS)) * time.Millisecond
	if in.HeartbeatMs > 0 {
		timer = time.NewTimer(interval)
		defer timer.Stop()
		beat = timer.C
	}
	r := newReply(min(maxReply, max(4*int(in.N), 16)))
	for {
		r.reset()
		var end error // the request's error, sent as the status after the reply
		done := false
		select {
		case ev, ok := <-events:
			done, end = r.take(ev, ok)
			for more := true; more && !done && r.room(); {
				select {
				case ev, ok := <-events:
					done, end = r.take(ev, ok)
				default:
					more = false
				}
			}
		case <-beat: // a heartbeat: the reply stays empty
		}
		if len(r.msg.Events) > 0 || !done {
			if err := stream.Send(&r.msg); err != nil {
				return err
			}
		}
		if end != nil {
			return toStatus(end)
		}
		if done {
			return nil
		}
		if timer != nil {
			timer.Reset(interval)
		}
	}
}

// maxReply bounds the events of one GenerateReply.
const maxReply = 256

// reply builds GenerateReply messages out of storage reused from one to the next.
type reply struct {
	msg    pb.GenerateReply
	events []pb.GenerateEvent // (capacity) the events of msg point here
	tokens []pb.GenerateEvent_Token
	finish []pb.GenerateEvent_Finish
}

// newReply returns a reply for at most capacity events per message.
func newReply(capacity int) *reply {
	return &reply{
		msg:    pb.GenerateReply{Events: make([]*pb.GenerateEvent, 0, capacity)},
		events: make([]pb.GenerateEvent, capacity),
		tokens: make([]pb.GenerateEvent_Token, capacity),
		finish: make([]pb.GenerateEvent_Finish, capacity),
	}
}

func (r *reply) reset()     { r.msg.Events = r.msg.Events[:0] }
func (r *reply) room() bool { return len(r.msg.Events) < len(r.events) }

// take adds the engine's event ev (ok false: the channel closed) and reports whether the
// request is over, and with which error.
func (r *reply) take(ev engine.Event, ok bool) (done bool, err error) {
	switch {
	case !ok:
		return true, nil
	case ev.Err != nil:
		return true, ev.Err
	}
	i := len(r.msg.Events)
	e := &r.events[i]
	e.Index = int32(ev.Index)
	if ev.Finish != "" {
		r.finish[i].Finish = finishToProto(ev.Finish)
		e.Kind = &r.finish[i]
	} else {
		r.tokens[i].Token = int32(ev.Token)
		e.Kind = &r.tokens[i]
	}
	r.msg.Events = append(r.msg.Events, e)
	return false, nil
}
