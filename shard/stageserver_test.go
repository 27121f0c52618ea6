package shard

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// loadModel opens the shipped stories260K model (5 layers) for the test.
func loadModel(t testing.TB) *model.Model {
	t.Helper()
	ck, err := ckpt.Open("../models/stories260K.bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.New(ck)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stage is a StageServer serving on a real socket, and its log.
type stage struct {
	srv  *StageServer
	addr string
	log  *syncBuffer
	done chan error // Serve's result
}

// startStage serves layers r of m on addr ("127.0.0.1:0" for a free port); the test's
// cleanup stops it. Stop may also be called by the test.
func startStage(t testing.TB, m *model.Model, r Range, addr string) *stage {
	t.Helper()
	return startStageWith(t, StageServerConfig{Model: m, Range: r}, addr)
}

// startStageWith is startStage with a config (its Logger is replaced), and preps run on
// the server before it serves.
func startStageWith(t testing.TB, cfg StageServerConfig, addr string, preps ...func(*StageServer)) *stage {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; { // a port just freed may linger
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	srv, err := NewStageServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, prep := range preps {
		prep(srv)
	}
	st := &stage{srv: srv, addr: ln.Addr().String(), log: log, done: make(chan error, 1)}
	go func() { st.done <- srv.Serve(ln) }()
	t.Cleanup(st.stop)
	return st
}

// logString is the stage's log so far, "" for no stage.
func (s *stage) logString() string {
	if s == nil {
		return ""
	}
	return s.log.String()
}

// stop stops the server and waits for Serve to return.
func (s *stage) stop() {
	s.srv.Stop()
	<-s.done
	s.done <- nil // for a second stop
}

// hello sends one Hello to addr.
func hello(t testing.TB, addr string, in *pb.HelloRequest) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = pb.NewStageClient(conn).Hello(ctx, in)
	return err
}

// TestStageHelloRefuses: a Hello that does not fit the stage is refused with the status
// and message of the table, and the refusal is logged; the chain is checked through to
// the last stage.
func TestStageHelloRefuses(t *testing.T) {
	m := loadModel(t)
	last := startStage(t, m, Range{3, 5}, "127.0.0.1:0")
	mid := startStage(t, m, Range{2, 3}, "127.0.0.1:0")
	ok := func() *pb.HelloRequest {
		return &pb.HelloRequest{Model: m.Identity(), BlockSize: 16, NumBlocks: 8, KvDtype: "fp32", MaxTokens: 64,
			Pipeline: "p0", Epoch: 1, FirstLayer: 2, Next: []string{last.addr}}
	}
	for _, tt := range []struct {
		name  string
		edit  func(*pb.HelloRequest)
		code  codes.Code
		msg   string
		where *stage // whose log names the refusal
	}{
		{"ok", func(*pb.HelloRequest) {}, codes.OK, "", nil},
		{"another model", func(h *pb.HelloRequest) { h.Model = "0123abcd" }, codes.FailedPrecondition, `the leader runs model "0123abcd"`, mid},
		{"gap before the range", func(h *pb.HelloRequest) { h.FirstLayer = 1 }, codes.FailedPrecondition, "the previous stage ends at layer 1, this stage starts at 2", mid},
		{"overlap before the range", func(h *pb.HelloRequest) { h.FirstLayer = 3 }, codes.FailedPrecondition, "the previous stage ends at layer 3, this stage starts at 2", mid},
		{"chain ends early", func(h *pb.HelloRequest) { h.Next = nil }, codes.FailedPrecondition, "the chain ends at layer 3 of 5", mid},
		{"chain goes past the end", func(h *pb.HelloRequest) { h.Next = []string{last.addr, mid.addr} }, codes.FailedPrecondition, "holds the last layer, but 1 stages follow", last},
		{"next stage misses a layer", func(h *pb.HelloRequest) { h.Next = []string{mid.addr} }, codes.FailedPrecondition, "the previous stage ends at layer 3, this stage starts at 2", mid},
		{"bad dtype", func(h *pb.HelloRequest) { h.KvDtype = "fp8" }, codes.InvalidArgument, "bad geometry", nil},
		{"no blocks", func(h *pb.HelloRequest) { h.NumBlocks = 0 }, codes.InvalidArgument, "bad geometry", nil},
		{"huge blocks", func(h *pb.HelloRequest) { h.BlockSize = 1 << 20 }, codes.InvalidArgument, "bad geometry", nil},
		{"cache too large", func(h *pb.HelloRequest) { h.NumBlocks = 1 << 31 }, codes.ResourceExhausted, "this stage allows 4294967296", nil},
		{"steps too large", func(h *pb.HelloRequest) { h.MaxTokens = 1 << 30 }, codes.ResourceExhausted, "and 1073741824 tokens per step", nil},
		{"ok again", func(*pb.HelloRequest) {}, codes.OK, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := ok()
			tt.edit(in)
			err := hello(t, mid.addr, in)
			st, _ := status.FromError(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) {
				t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
			if log := strings.ReplaceAll(tt.where.logString(), `\"`, `"`); tt.where != nil && !(strings.Contains(log, "stage refused a session") && strings.Contains(log, tt.msg)) {
				t.Errorf("no log line %q in:\n%s", tt.msg, tt.where.log)
			}
		})
	}
}

// TestStageSteps: malformed steps end the stream with INVALID_ARGUMENT, a stream of
// another epoch with FAILED_PRECONDITION, and the server keeps serving.
func TestStageSteps(t *testing.T) {
	m := loadModel(t)
	last := startStage(t, m, Range{3, 5}, "127.0.0.1:0")
	conn, err := grpc.NewClient(last.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := pb.NewStageClient(conn)
	if err := hello(t, last.addr, &pb.HelloRequest{Model: m.Identity(), BlockSize: 4, NumBlocks: 8, KvDtype: "fp32", MaxTokens: 8, Epoch: 7, FirstLayer: 3}); err != nil {
		t.Fatal(err)
	}
	dim := m.Config.Dim
	good := func() *pb.StepRequest {
		return &pb.StepRequest{Id: 1, Epoch: 7, Lens: []int32{5}, News: []int32{5}, Blocks: []int32{0, 1},
			Hidden: make([]byte, 4*5*dim), Samples: []*pb.StageSample{{Row: 0}}}
	}
	for _, tt := range []struct {
		name string
		edit func(*pb.StepRequest)
		code codes.Code
	}{
		{"ok", func(*pb.StepRequest) {}, codes.OK},
		{"stale epoch", func(r *pb.StepRequest) { r.Epoch = 6 }, codes.FailedPrecondition},
		{"short hidden", func(r *pb.StepRequest) { r.Hidden = r.Hidden[1:] }, codes.InvalidArgument},
		{"missing block", func(r *pb.StepRequest) { r.Blocks = r.Blocks[:1] }, codes.InvalidArgument},
		{"block out of range", func(r *pb.StepRequest) { r.Blocks[1] = 8 }, codes.InvalidArgument},
		{"odd copies", func(r *pb.StepRequest) { r.Copies = []int32{1} }, codes.InvalidArgument},
		{"copy out of range", func(r *pb.StepRequest) { r.Copies = []int32{1, -1} }, codes.InvalidArgument},
		{"new past len", func(r *pb.StepRequest) { r.News[0] = 6 }, codes.InvalidArgument},
		{"too many tokens", func(r *pb.StepRequest) {
			r.Lens, r.News, r.Blocks, r.Hidden = []int32{9}, []int32{9}, []int32{0, 1, 2}, make([]byte, 4*9*dim)
		}, codes.InvalidArgument},
		{"lens and news differ", func(r *pb.StepRequest) { r.News = nil }, codes.InvalidArgument},
		{"sample of no row", func(r *pb.StepRequest) { r.Samples[0].Row = 1 }, codes.InvalidArgument},
		{"bad temperature", func(r *pb.StepRequest) { r.Samples[0].Temperature = -1 }, codes.InvalidArgument},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stream, err := api.Steps(ctx)
			if err != nil {
				t.Fatal(err)
			}
			req := good()
			tt.edit(req)
			if err := stream.Send(req); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			reply, err := stream.Recv()
			if status.Code(err) != tt.code {
				t.Fatalf("got %v, want %v", err, tt.code)
			}
			if err == nil && (reply.Id != 1 || len(reply.Tokens) != 1) {
				t.Errorf("reply %v", reply)
			}
		})
	}
}

// TestStageGarbage: random bytes, a corrupt HTTP/2 stream, HTTP/1 and a silent
// connection on the port are dropped by the server (the silent one after
// HandshakeTimeout), which then still answers health checks and Hellos.
func TestStageGarbage(t *testing.T) {
	m := loadModel(t)
	last := startStageWith(t, StageServerConfig{Model: m, Range: Range{3, 5}, HandshakeTimeout: 200 * time.Millisecond}, "127.0.0.1:0")
	junk := make([]byte, 64<<10)
	rand.Read(junk)
	var wg sync.WaitGroup
	for _, payload := range [][]byte{junk, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + string(junk[:4096])), []byte("GET / HTTP/1.1\r\n\r\n"), nil} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", last.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			c.Write(payload)
			_, err = io.Copy(io.Discard, c) // until the server drops us, or the deadline
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%.20q: the server kept the connection open", payload)
			}
		}()
	}
	wg.Wait()
	conn, err := grpc.NewClient(last.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: pb.Stage_ServiceDesc.ServiceName})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after garbage: %v, %v", h, err)
	}
	if err := hello(t, last.addr, &pb.HelloRequest{Model: m.Identity(), BlockSize: 16, NumBlocks: 4, KvDtype: "fp32", MaxTokens: 8, Epoch: 1, FirstLayer: 3}); err != nil {
		t.Fatal(err)
	}
}

// TestStageServerConfig: configs that cannot serve are refused with ErrStageConfig.
func TestStageServerConfig(t *testing.T) {
	m := loadModel(t)
	for _, cfg := range []StageServerConfig{
		{Range: Range{1, 2}},
		{Model: m, Range: Range{0, 2}},
		{Model: m, Range: Range{3, 6}},
		{Model: m, Range: Range{3, 3}},
		{Model: m, Range: Range{1, 2}, HelloTimeout: -1},
		{Model: m, Range: Range{1, 2}, TLS: TLS{CAFile: "testdata/none.pem"}},
	} {
		if _, err := NewStageServer(cfg); !errors.Is(err, ErrStageConfig) {
			t.Errorf("%+v: got %v, want ErrStageConfig", cfg, err)
		}
	}
}

var _ = blocks.FP32
