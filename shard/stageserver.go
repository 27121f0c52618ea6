package shard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model/tensor"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// StageServer serves the Stage service (proto/kvmesh/v1/stage.proto) and the standard
// gRPC health service for one layer range of one model: the worker side of a pipeline.
//
// A leader's Hello opens a session: the server checks that the leader runs the same
// checkpoint (model identity) and that its range starts where the previous stage ends,
// and refuses otherwise with FAILED_PRECONDITION and a log line; it then allocates a
// Runner with the leader's block geometry (a mirror KV cache) and, unless it holds the
// last layer, opens the session with the next stage before answering. A new Hello ends
// the session before it (its Steps stream ends with FAILED_PRECONDITION) and starts
// from an empty cache. Each step of the session's Steps stream is run in order; the last
// stage replies with the sampled tokens, a middle stage sends its hidden states on over
// its own Steps stream to the next stage and relays the replies back, so several steps
// may be in flight along the chain. Any error ends the stream, and the session with it.
//
// The server holds one session at a time, the one of the pipeline it belongs to.
//
// With StageServerConfig.SwapPath it also keeps the disk tier of its layers
// (stagedisk.go): opened at the first Hello, kept across sessions of the same KV layout;
// every step's disk moves are repeated before its copies and compute, and Have answers
// the leader (and the previous stage) from it.
type StageServer struct {
	pb.UnimplementedStageServer
	cfg      StageServerConfig
	grpc     *grpc.Server
	health   *health.Server
	creds    grpc.DialOption // for the next stage
	ownsPool bool

	mu      sync.Mutex                  // protects sess, conns, stopped and disk
	sess    *session                    // the current session, nil before the first Hello
	conns   map[string]*grpc.ClientConn // connections to next stages, by address
	stopped bool                        // Stop was called: no more sessions
	disk    *stageDisk                  // the disk tier of the last Hello's layout; nil: none

	diskMu sync.Mutex // serialises opening and closing disk (taken before mu, never inside it)

	testDelay time.Duration // test seam: every step takes this much longer
}

var _ pb.StageServer = (*StageServer)(nil)

// session is one leader's session: the Runner and the buffers of its steps.
type session struct {
	epoch    uint64
	pipeline string
	next     []string       // addresses of the later stages, in order
	down     pb.StageClient // the next stage; nil for the last
	beat     time.Duration  // heartbeat interval while a step runs; 0: none
	busy     atomic.Bool    // a step is running
	closed   chan struct{}  // closed by close: ends a middle stage's stream
	once     sync.Once      // closes closed

	cancel func() // ends the session's Steps stream; nil if none is open; guarded by StageServer.mu

	mu     sync.Mutex     // protects everything below: one step at a time
	runner *Runner        // nil once closed
	dec    *stepDecoder   // the step being run
	out    pb.StepRequest // a middle stage's step for the next stage
	reply  pb.StepReply   // a last stage's reply
}

// NewStageServer returns a StageServer for cfg's model and range. Serve it with Serve;
// end it with Stop.
func NewStageServer(cfg StageServerConfig) (*StageServer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	screds, err := stageCredentials(cfg.TLS.ServerCredentials())
	if err != nil {
		return nil, err
	}
	ccreds, err := stageCredentials(cfg.TLS.ClientCredentials())
	if err != nil {
		return nil, err
	}
	s := &StageServer{cfg: cfg, health: health.NewServer(), creds: grpc.WithTransportCredentials(ccreds), conns: map[string]*grpc.ClientConn{}}
	if s.cfg.Pool == nil {
		s.cfg.Pool, s.ownsPool = tensor.NewPool(0), true
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(screds),
		grpc.ConnectionTimeout(cfg.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.PingInterval, Timeout: cfg.PingTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	pb.RegisterStageServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(pb.Stage_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// RegisterService registers another service on the server's port (before Serve), as
// leader.Server does, so a node serves one gRPC port whatever its role.
func (s *StageServer) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.grpc.RegisterService(desc, impl)
}

// Serve accepts connections on ln until Stop; it then returns nil.
func (s *StageServer) Serve(ln net.Listener) error {
	if err := s.grpc.Serve(ln); err != nil {
		return fmt.Errorf("shard: stage serve: %w", err)
	}
	return nil
}

// Stop closes every connection and listener at once, ends the session (running steps
// end with an error at the leader) and releases the server's memory.
func (s *StageServer) Stop() {
	s.health.Shutdown()
	s.grpc.Stop()
	sess := s.takeSession()
	s.mu.Lock()
	s.stopped = true
	conns := s.conns
	s.conns = map[string]*grpc.ClientConn{}
	s.mu.Unlock()
	if sess != nil {
		sess.close()
	}
	for _, c := range conns {
		c.Close()
	}
	s.diskMu.Lock()
	s.mu.Lock()
	disk := s.disk
	s.disk = nil
	s.mu.Unlock()
	if disk != nil {
		if err := disk.close(); err != nil {
			s.cfg.Logger.Warn("closing the stage disk tier", "err", err)
		}
	}
	s.diskMu.Unlock()
	if s.ownsPool {
		s.ownsPool = false
		s.cfg.Pool.Close()
	}
}

// maxBlockSize bounds HelloRequest.block_size.
const maxBlockSize = 1 << 12

// minHeartbeatMS is the shortest heartbeat interval a stage keeps, in milliseconds.
const minHeartbeatMS = 50

// refuse logs and returns a FAILED_PRECONDITION status for a Hello.
func (s *StageServer) refuse(in *pb.HelloRequest, msg string) error {
	s.cfg.Logger.Warn("stage refused a session: "+msg, "range", s.cfg.Range.String(),
		"pipeline", in.Pipeline, "epoch", in.Epoch)
	return status.Error(codes.FailedPrecondition, fmt.Sprintf("stage %v: %s", s.cfg.Range, msg))
}

// Hello implements the Stage service: check, replace the session, open the next stage's.
func (s *StageServer) Hello(ctx context.Context, in *pb.HelloRequest) (*pb.HelloReply, error) {
	m, r := s.cfg.Model, s.cfg.Range
	layers := m.Config.Layers
	switch last := r.Last == layers; {
	case in.Model != m.Identity():
		return nil, s.refuse(in, fmt.Sprintf("the leader runs model %q, this stage holds %q", in.Model, m.Identity()))
	case int(in.FirstLayer) != r.First:
		return nil, s.refuse(in, fmt.Sprintf("the previous stage ends at layer %d, this stage starts at %d", in.FirstLayer, r.First))
	case last && len(in.Next) > 0:
		return nil, s.refuse(in, fmt.Sprintf("this stage holds the last layer, but %d stages follow it (%v)", len(in.Next), in.Next))
	case !last && len(in.Next) == 0:
		return nil, s.refuse(in, fmt.Sprintf("the chain ends at layer %d of %d", r.Last, layers))
	}
	kv, err := blocks.ParseDType(in.KvDtype)
	if err != nil || in.BlockSize == 0 || in.BlockSize > maxBlockSize || in.NumBlocks == 0 || in.MaxTokens == 0 {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("stage %v: bad geometry: block size %d, %d blocks, kv %q, %d tokens",
			r, in.BlockSize, in.NumBlocks, in.KvDtype, in.MaxTokens))
	}
	shape := m.KVShape(int(in.BlockSize))
	shape.Layers = r.Len()
	if kvBytes := int64(in.NumBlocks) * int64(shape.BlockBytes(kv)); kvBytes > s.cfg.MaxKVBytes || int(in.MaxTokens) > s.cfg.MaxTokens {
		s.cfg.Logger.Warn("stage refused a session too large for it", "range", r.String(), "pipeline", in.Pipeline,
			"kv_bytes", kvBytes, "max_kv_bytes", s.cfg.MaxKVBytes, "tokens", in.MaxTokens, "max_tokens", s.cfg.MaxTokens)
		return nil, status.Error(codes.ResourceExhausted, fmt.Sprintf("stage %v: a session of %d KV bytes and %d tokens per step; this stage allows %d and %d",
			r, kvBytes, in.MaxTokens, s.cfg.MaxKVBytes, s.cfg.MaxTokens))
	}
	if old := s.takeSession(); old != nil {
		old.close() // first, so the old cache's memory is free for the new
	}
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped { // the pool may be closed
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("stage %v: stopped", r))
	}
	disk := s.openDisk(ctx, kv, int(in.BlockSize))
	runner, err := NewRunner(RunnerConfig{Model: m, Range: r, BlockSize: int(in.BlockSize), NumBlocks: int(in.NumBlocks),
		KVDType: kv, MaxTokens: int(in.MaxTokens), Pool: s.cfg.Pool, disk: disk})
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	sess := &session{epoch: in.Epoch, pipeline: in.Pipeline, next: in.Next, runner: runner, closed: make(chan struct{}),
		dec: newStepDecoder(int(in.BlockSize), int(in.MaxTokens), m.Config.Dim)}
	if in.HeartbeatMs > 0 {
		sess.beat = time.Duration(max(in.HeartbeatMs, minHeartbeatMS)) * time.Millisecond
	}
	if len(in.Next) > 0 {
		if err := s.helloNext(ctx, sess, in); err != nil {
			sess.close()
			return nil, err
		}
	}
	if old := s.takeSession(); old != nil { // a concurrent Hello got here first; the later one stays
		defer old.close()
	}
	s.mu.Lock()
	stopped = s.stopped
	if !stopped {
		s.sess = sess
	}
	s.mu.Unlock()
	if stopped {
		sess.close()
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("stage %v: stopped", r))
	}
	s.cfg.Logger.Info("stage session opened", "range", r.String(), "pipeline", in.Pipeline, "epoch", in.Epoch,
		"blocks", in.NumBlocks, "block_size", in.BlockSize, "kv", in.KvDtype, "next", in.Next)
	return &pb.HelloReply{Protocol: stageProtocol, EndLayer: uint32(r.Last), ModelLayers: uint32(layers)}, nil
}

// takeSession removes the current session, ending its stream, and returns it.
func (s *StageServer) takeSession() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.sess
	s.sess = nil
	if old != nil && old.cancel != nil {
		old.cancel()
	}
	return old
}

// helloNext opens the session with the next stage, whose status it returns unchanged on
// refusal.
func (s *StageServer) helloNext(ctx context.Context, sess *session, in *pb.HelloRequest) error {
	conn, err := s.conn(in.Next[0])
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HelloTimeout)
	defer cancel()
	fwd := &pb.HelloRequest{Model: in.Model, BlockSize: in.BlockSize, NumBlocks: in.NumBlocks, KvDtype: in.KvDtype,
		MaxTokens: in.MaxTokens, Pipeline: in.Pipeline, Epoch: in.Epoch, FirstLayer: uint32(s.cfg.Range.Last), Next: in.Next[1:],
		HeartbeatMs: in.HeartbeatMs}
	sess.down = pb.NewStageClient(conn)
	if _, err := sess.down.Hello(ctx, fwd, grpc.WaitForReady(true)); err != nil {
		st, _ := status.FromError(err)
		return status.Error(st.Code(), fmt.Sprintf("next stage %s: %s", in.Next[0], st.Message()))
	}
	return nil
}

// conn returns the connection to a next stage, made once per address.
func (s *StageServer) conn(addr string) (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.conns[addr]; ok {
		c.ResetConnectBackoff() // a replaced stage is tried again at once
		return c, nil
	}
	c, err := dialStage(addr, s.creds)
	if err != nil {
		return nil, err
	}
	s.conns[addr] = c
	return c, nil
}

// dialStage makes a connection to a stage: reconnecting quickly, so a stage replaced at
// the same address is found within a second.
func dialStage(addr string, creds grpc.DialOption) (*grpc.ClientConn, error) {
	bo := backoff.DefaultConfig
	bo.BaseDelay, bo.MaxDelay = 50*time.Millisecond, time.Second
	c, err := grpc.NewClient(addr, creds,
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: time.Second}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 2 * time.Second, PermitWithoutStream: true}),
	)
	if err != nil {
		return nil, fmt.Errorf("dial stage %s: %w", addr, err)
	}
	return c, nil
}

// close ends the session: its stream, then (after a running step) its Runner.
func (c *session) close() {
	c.once.Do(func() { close(c.closed) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runner != nil {
		c.runner.Close()
		c.runner = nil
	}
}

// bind makes the stream whose first request is first the session's stream, ending any
// earlier one; it returns the session, or FAILED_PRECONDITION for an epoch that is not
// the current session's.
func (s *StageServer) bind(first *pb.StepRequest, cancel func()) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sess
	if sess == nil || sess.epoch != first.Epoch {
		return nil, status.Error(codes.FailedPrecondition, fmt.Sprintf("stage %v: no session of epoch %d (a newer Hello replaced it, or none came)", s.cfg.Range, first.Epoch))
	}
	if sess.cancel != nil {
		sess.cancel()
	}
	sess.cancel = cancel
	return sess, nil
}

// Steps implements the Stage service: run the session's steps in order.
func (s *StageServer) Steps(stream grpc.BidiStreamingServer[pb.StepRequest, pb.StepReply]) error {
	first, err := stream.Recv()
	if err != nil {
		return err // io.EOF: an empty stream ends cleanly
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	sess, err := s.bind(first, cancel)
	if err != nil {
		return err
	}
	up := &upstream{stream: stream}
	if sess.beat > 0 {
		go up.heartbeat(ctx, sess)
	}
	if sess.down == nil {
		return s.lastSteps(ctx, sess, first, up)
	}
	return s.middleSteps(ctx, sess, first, up)
}

// upstream is the replies' side of a Steps stream: replies and heartbeats go out one at
// a time.
type upstream struct {
	mu     sync.Mutex // protects stream's sending side
	stream grpc.BidiStreamingServer[pb.StepRequest, pb.StepReply]
}

func (u *upstream) send(r *pb.StepReply) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stream.Send(r)
}

// heartbeat sends a heartbeat (a reply of id 0) every sess.beat while the session runs a
// step, until ctx ends.
func (u *upstream) heartbeat(ctx context.Context, sess *session) {
	t := time.NewTicker(sess.beat)
	defer t.Stop()
	beat := &pb.StepReply{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if sess.busy.Load() && u.send(beat) != nil {
				return
			}
		}
	}
}

// errSessionEnded ends a stream whose session was replaced or closed.
var errSessionEnded = status.Error(codes.FailedPrecondition, "stage: the session ended (replaced by a newer Hello, or the server stopped)")

// run runs one step of the session under its lock and passes the result to use (under
// the lock too: the Runner's results are valid until its next step).
func (s *StageServer) run(sess *session, req *pb.StepRequest, use func(hidden []float32, tokens []int) error) error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.runner == nil || req.Epoch != sess.epoch {
		return errSessionEnded
	}
	st, err := sess.dec.decode(req)
	if err != nil {
		return status.Error(codes.InvalidArgument, fmt.Sprintf("stage %v: %v", s.cfg.Range, err))
	}
	sess.busy.Store(true)
	hidden, tokens, err := sess.runner.Run(st)
	if s.testDelay > 0 {
		time.Sleep(s.testDelay) // a slow model
	}
	sess.busy.Store(false)
	if errors.Is(err, errDiskLoad) {
		s.cfg.Logger.Error("stage failed a step: a block it holds on disk did not load", "range", s.cfg.Range.String(), "step", req.Id, "err", err)
		return status.Error(codes.DataLoss, fmt.Sprintf("stage %v: step %d: %v", s.cfg.Range, req.Id, err))
	}
	if err != nil {
		return status.Error(codes.InvalidArgument, fmt.Sprintf("stage %v: step %d: %v", s.cfg.Range, req.Id, err))
	}
	return use(hidden, tokens)
}

// lastSteps runs the steps of a last stage and replies with the tokens.
func (s *StageServer) lastSteps(ctx context.Context, sess *session, req *pb.StepRequest, up *upstream) error {
	for {
		err := s.run(sess, req, func(_ []float32, tokens []int) error {
			sess.reply.Id = req.Id
			sess.reply.Tokens = sess.reply.Tokens[:0]
			for _, t := range tokens {
				sess.reply.Tokens = append(sess.reply.Tokens, int32(t))
			}
			return up.send(&sess.reply)
		})
		if err != nil {
			return err
		}
		if req, err = up.stream.Recv(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errSessionEnded
		}
	}
}

// middleSteps runs the steps of a middle stage, sends the hidden states on to the next
// stage, and relays its replies back. The handler returns at the first error of either
// direction, which ends the upstream call and, through ctx, the downstream one.
func (s *StageServer) middleSteps(ctx context.Context, sess *session, first *pb.StepRequest, up *upstream) error {
	down, err := sess.down.Steps(ctx)
	if err != nil {
		return status.Error(codes.Unavailable, fmt.Sprintf("stage %v: next stage %s: %v", s.cfg.Range, sess.next[0], err))
	}
	errs := make(chan error, 2)
	go func() { // upstream → run → downstream
		req := first
		for {
			err := s.run(sess, req, func(hidden []float32, _ []int) error {
				out := &sess.out // the request as it came, with this stage's hidden states
				out.Id, out.Epoch, out.Lens, out.News, out.Blocks = req.Id, req.Epoch, req.Lens, req.News, req.Blocks
				out.Copies, out.Samples, out.Disk = req.Copies, req.Samples, req.Disk
				out.Hidden = appendFloats(out.Hidden[:0], hidden)
				return down.Send(out)
			})
			if err == io.EOF { // the next stage ended the stream: its status comes to Recv
				errs <- nil
				return
			}
			if err != nil {
				errs <- downErr(s, sess, err)
				return
			}
			if req, err = up.stream.Recv(); err == io.EOF {
				errs <- down.CloseSend()
				return
			} else if err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() { // downstream replies → upstream
		for {
			reply, err := down.Recv()
			if err == io.EOF {
				errs <- nil
				return
			} else if err != nil {
				errs <- downErr(s, sess, err)
				return
			}
			if err := up.send(reply); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				return err
			}
		case <-sess.closed:
			return errSessionEnded
		}
	}
	return nil
}

// downErr names the next stage in an error of the downstream stream, keeping its code.
func downErr(s *StageServer, sess *session, err error) error {
	if st, ok := status.FromError(err); ok && !errors.Is(err, errSessionEnded) && st.Code() != codes.InvalidArgument {
		return status.Error(st.Code(), fmt.Sprintf("stage %v: next stage %s: %s", s.cfg.Range, sess.next[0], st.Message()))
	}
	return err
}
