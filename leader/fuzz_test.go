package leader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"

	"github.com/kvmesh/kvmesh/engine"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// rawCodec sends and receives message bytes as they are, so a test can put any bytes in
// a Generate request.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" } // the server decodes them as protobuf

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = append((*b)[:0], data...)
		return nil
	}
	return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
}

var _ encoding.Codec = rawCodec{}

// FuzzGenerateBytes: any bytes as a Generate request get an answer (events or an error
// status) from a real leader, never a crash, and leave no KV block held.
func FuzzGenerateBytes(f *testing.F) {
	seeds := []*pb.GenerateRequest{
		{Prompt: []int32{1, 403}, MaxTokens: 5},
		{Prompt: []int32{1, 403}, MaxTokens: 3, N: 2, Sampling: &pb.Sampling{Temperature: 1, TopP: 0.9, Seed: 42}},
		{Prompt: []int32{1, 2, 3}, MaxTokens: 2, Resumed: 1, StopTokens: []int32{5}, HeartbeatMs: 1},
		{Prompt: []int32{-1}, MaxTokens: -5, N: -2},
		{Prompt: []int32{1}, MaxTokens: 1 << 30, N: 1 << 30},
		{Prompt: []int32{1}, MaxTokens: 1, Sampling: &pb.Sampling{Temperature: -1, TopP: 7}},
		{Prompt: []int32{1}, MaxTokens: 1, Model: "not this one"},
		{},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	n := startNode(f, engine.Config{}, ServerConfig{Model: "model-a"})
	conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	desc := &grpc.StreamDesc{StreamName: "Generate", ServerStreams: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stream, err := conn.NewStream(ctx, desc, pb.Leader_Generate_FullMethodName, grpc.ForceCodec(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&data); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		for {
			var msg []byte
			if err := stream.RecvMsg(&msg); err != nil {
				if ctx.Err() != nil {
					t.Fatalf("no end to the stream: %v", err)
				}
				break // io.EOF after the last event, or the leader's error status
			}
		}
		waitFor(t, 10*time.Second, "every block free", n.allFree)
	})
}
