package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kvmesh/kvmesh/engine"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// StageClient is a leader's side of the stage transport: an engine.Downstream that sends
// each step to the first later stage of the pipeline over one Steps stream and returns
// the last stage's tokens. Several steps may be in flight; replies come back in order.
//
// A session is opened by DialPipeline and again by the first Step after any failure:
// Hello (with a new epoch) through the whole chain, then a new Steps stream. A failed
// step (a transport error, a stage's error status, or DeadAfter without a reply or a
// heartbeat while a step is in flight) ends the session, with every step in flight, and
// returns an error wrapping ErrStageBroken, or ErrStageRefused when a stage refused the
// new session; the engine then fails the running requests with engine.ErrPipeline. So a replaced stage serves again from the
// first step after it is back, and a stage that died, hangs or became unreachable
// mid-step is noticed within DeadAfter (at once when its process dies, since its sockets
// close), however long the step.
//
// Send and Recv are not safe for concurrent use (the engine calls them from its loop
// only), nor is Close with them: close the client after the engine's Shutdown.
type StageClient struct {
	cfg  PipelineConfig
	conn *grpc.ClientConn
	api  pb.StageClient

	epoch  uint64                                                 // of the current or last session
	stream grpc.BidiStreamingClient[pb.StepRequest, pb.StepReply] // nil without a session
	cancel context.CancelFunc                                     // ends stream
	dead   *time.Timer                                            // calls cancel after DeadAfter; armed while waiting for a reply
	id     uint64                                                 // the last step's id
	sent   []int                                                  // samples of each step in flight, oldest first (ids id-len+1..id)
	req    pb.StepRequest                                         // reused for every step
	tokens []int                                                  // the last step's tokens
}

var _ engine.Downstream = (*StageClient)(nil)

// DialPipeline connects to the first of cfg.Stages and opens a session through the
// chain, so a stage of another model, a chain whose ranges do not join up
// (ErrStageRefused) or a stage that cannot be reached within HelloTimeout
// (ErrStageBroken) fails here. ctx bounds this first Hello.
func DialPipeline(ctx context.Context, cfg PipelineConfig) (*StageClient, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	creds, err := stageCredentials(cfg.TLS.ClientCredentials())
	if err != nil {
		return nil, err
	}
	conn, err := dialStage(cfg.Stages[0], grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	c := &StageClient{cfg: cfg, conn: conn, api: pb.NewStageClient(conn), epoch: uint64(time.Now().UnixNano())}
	if err := c.open(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Epoch is the epoch of the current session, or of the last one if it failed. Epochs
// count up from the wall clock's nanoseconds at DialPipeline, so a restarted leader does
// not reuse its predecessor's.
func (c *StageClient) Epoch() uint64 { return c.epoch }

// Close ends the session and the connection.
func (c *StageClient) Close() error {
	c.reset()
	return c.conn.Close()
}

// reset ends the current session's stream, if any.
func (c *StageClient) reset() {
	if c.cancel != nil {
		c.dead.Stop()
		c.cancel()
	}
	c.stream, c.cancel, c.dead = nil, nil, nil
	c.sent = c.sent[:0]
}

// open opens a new session: Hello with the next epoch, then its Steps stream.
func (c *StageClient) open(ctx context.Context) error {
	c.reset()
	c.epoch++
	c.id = 0
	c.conn.ResetConnectBackoff() // a stage replaced at the same address is tried at once
	hctx, cancel := context.WithTimeout(ctx, c.cfg.HelloTimeout)
	defer cancel()
	_, err := c.api.Hello(hctx, &pb.HelloRequest{
		Model: c.cfg.Model, BlockSize: uint32(c.cfg.BlockSize), NumBlocks: uint32(c.cfg.NumBlocks),
		KvDtype: c.cfg.KVDType.String(), MaxTokens: uint32(c.cfg.MaxTokens), Pipeline: c.cfg.Pipeline,
		Epoch: c.epoch, FirstLayer: uint32(c.cfg.FirstLayer), Next: c.cfg.Stages[1:],
		HeartbeatMs: uint32(c.cfg.Heartbeat / time.Millisecond),
	}, grpc.WaitForReady(true))
	if err != nil {
		err = c.stageError("hello", err)
		c.cfg.Logger.Warn("pipeline session refused or unreachable", "pipeline", c.cfg.Pipeline, "stages", c.cfg.Stages, "err", err)
		return err
	}
	sctx, scancel := context.WithCancel(context.Background())
	stream, err := c.api.Steps(sctx)
	if err != nil {
		scancel()
		return c.stageError("open steps", err)
	}
	c.stream, c.cancel = stream, scancel
	c.dead = time.AfterFunc(time.Hour, scancel)
	c.dead.Stop()
	return nil
}

// stageError wraps an error of a call to the first stage: ErrStageRefused for a
// refusal (the session does not fit a stage), ErrStageBroken otherwise.
func (c *StageClient) stageError(op string, err error) error {
	kind := ErrStageBroken
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.ResourceExhausted, codes.InvalidArgument:
		kind = ErrStageRefused
	}
	return fmt.Errorf("shard: pipeline %q %s (epoch %d, via %s): %w: %v", c.cfg.Pipeline, op, c.epoch, c.cfg.Stages[0], kind, err)
}

// errSilent is the cause of a stream cancelled because the pipeline said nothing for
// DeadAfter.
var errSilent = errors.New("no reply or heartbeat")

// Step sends st and waits for its tokens: Send then Recv, with nothing else in flight.
func (c *StageClient) Step(ctx context.Context, st *engine.StageStep) ([]int, error) {
	if err := c.Send(ctx, st); err != nil {
		return nil, err
	}
	return c.Recv(ctx)
}

// Send implements engine.Downstream: it sends st as the next step of the session, opening
// one if there is none. A failure ends the session with every step in flight.
func (c *StageClient) Send(ctx context.Context, st *engine.StageStep) error {
	if c.stream == nil {
		if err := c.open(ctx); err != nil {
			return err
		}
	}
	c.id++
	encodeStep(&c.req, c.id, c.epoch, st, st.Hidden)
	if err := c.stream.Send(&c.req); err != nil {
		// io.EOF: the stream ended; its status comes to Recv.
		if _, rerr := c.stream.Recv(); rerr != nil {
			err = rerr
		}
		err = c.stageError(fmt.Sprintf("step %d", c.id), err)
		c.reset()
		return err
	}
	c.sent = append(c.sent, len(st.Samples))
	return nil
}

// Recv implements engine.Downstream: it waits for the oldest step in flight, at most
// DeadAfter after the last message from the pipeline. A failure ends the session.
func (c *StageClient) Recv(ctx context.Context) ([]int, error) {
	if len(c.sent) == 0 {
		return nil, fmt.Errorf("shard: pipeline %q: %w: no step in flight", c.cfg.Pipeline, ErrStageBroken)
	}
	tokens, err := c.recv(ctx)
	if err != nil {
		c.reset()
		return nil, err
	}
	c.sent = slices.Delete(c.sent, 0, 1) // in place: the queue keeps its array
	return tokens, nil
}

// recv receives the reply to the oldest step in flight.
func (c *StageClient) recv(ctx context.Context) ([]int, error) {
	want := c.id - uint64(len(c.sent)) + 1
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, c.cancel)
		defer stop()
	}
	c.dead.Reset(c.cfg.DeadAfter)
	reply, err := c.receive()
	if !c.dead.Stop() { // the timer fired: the stream is cancelled, whatever came back
		err = errSilent
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("shard: pipeline %q step %d: %w", c.cfg.Pipeline, want, ctx.Err())
	case err != nil:
		if err == errSilent {
			err = fmt.Errorf("%w for %v", err, c.cfg.DeadAfter)
		}
		return nil, c.stageError(fmt.Sprintf("step %d", want), err)
	case reply.Id != want:
		return nil, c.stageError("step", fmt.Errorf("reply to step %d, want %d", reply.Id, want))
	case len(reply.Tokens) != c.sent[0]:
		return nil, c.stageError("step", fmt.Errorf("%d tokens for %d samples", len(reply.Tokens), c.sent[0]))
	}
	c.tokens = c.tokens[:0]
	for _, t := range reply.Tokens {
		c.tokens = append(c.tokens, int(t))
	}
	return c.tokens, nil
}

// receive receives the next reply on the session's stream, skipping heartbeats; each
// message received restarts the DeadAfter timer.
func (c *StageClient) receive() (*pb.StepReply, error) {
	for {
		reply, err := c.stream.Recv()
		if err != nil || reply.Id != 0 {
			return reply, err
		}
		if !c.dead.Reset(c.cfg.DeadAfter) { // it had fired: the stream is cancelled
			return nil, errSilent
		}
	}
}
