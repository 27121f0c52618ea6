package shard

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// TestStepRoundTrip: a step encoded for the wire decodes to the same step.
func TestStepRoundTrip(t *testing.T) {
	m := loadModel(t)
	st := benchStep(m, 3, 20, 2)
	st.Copies = []blocks.Copy{{Dst: 5, Src: 1}, {Dst: 6, Src: 2}}
	st.Samples[1] = engine.SampleSpec{Row: 1, Draw: 7, Params: sample.Params{Temperature: 0.8, TopP: 0.9, Seed: 42}}
	var req pb.StepRequest
	for range 2 { // the second time over reused buffers
		encodeStep(&req, 3, 9, st, st.Hidden)
		data, err := proto.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		var got pb.StepRequest
		if err := proto.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		dec := newStepDecoder(16, 64, m.Config.Dim)
		back, err := dec.decode(&got)
		if err != nil {
			t.Fatal(err)
		}
		if got.Id != 3 || got.Epoch != 9 || fmt.Sprintf("%+v", *back) != fmt.Sprintf("%+v", *st) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", *back, *st)
		}
	}
}

// FuzzStageStep: any bytes that arrive as a StepRequest are decoded and run by a stage
// without a panic: a bad step is an error, never a crash.
func FuzzStageStep(f *testing.F) {
	m := loadModel(f)
	r, err := NewRunner(RunnerConfig{Model: m, Range: Range{3, 5}, BlockSize: 4, NumBlocks: 8, KVDType: blocks.FP32, MaxTokens: 16})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	seed := func(st *engine.StageStep) {
		var req pb.StepRequest
		encodeStep(&req, 1, 1, st, st.Hidden)
		data, err := proto.Marshal(&req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	ok := &engine.StageStep{Seqs: []engine.StageSeq{{Blocks: []int{0, 1}, Len: 6, New: 6}, {Blocks: []int{2}, Len: 1, New: 1}},
		Copies: []blocks.Copy{{Dst: 3, Src: 0}}, Hidden: make([]float32, 7*m.Config.Dim),
		Samples: []engine.SampleSpec{{Row: 0}, {Row: 1, Params: sample.Params{Temperature: 1, TopP: 0.9, Seed: 3}}}}
	seed(ok)
	bad := *ok
	bad.Seqs = []engine.StageSeq{{Blocks: []int{7, -1}, Len: 6, New: 6}, {Blocks: []int{9}, Len: 1, New: 1}}
	seed(&bad)
	bad.Copies = []blocks.Copy{{Dst: 100, Src: -3}}
	seed(&bad)
	f.Add([]byte{})
	f.Add([]byte{0x1a, 0x02, 0xff, 0x7f, 0x22, 0x01, 0x80})
	dec := newStepDecoder(4, 16, m.Config.Dim)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req pb.StepRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		st, err := dec.decode(&req)
		if err != nil {
			return
		}
		r.Run(st) // an error is fine; a panic fails
	})
}

// TestStageStepsInFlight: several steps sent without waiting come back in order, each
// with its id and the tokens the same steps give in process (Chain).
func TestStageStepsInFlight(t *testing.T) {
	m := loadModel(t)
	last := startStage(t, m, Range{3, 5}, "127.0.0.1:0")
	mid := startStage(t, m, Range{2, 3}, "127.0.0.1:0")
	if err := hello(t, mid.addr, &pb.HelloRequest{Model: m.Identity(), BlockSize: 16, NumBlocks: 64, KvDtype: "fp32", MaxTokens: 64,
		Epoch: 5, FirstLayer: 2, Next: []string{last.addr}, HeartbeatMs: 100}); err != nil {
		t.Fatal(err)
	}
	var chain Chain
	for _, r := range []Range{{2, 3}, {3, 5}} {
		s, err := NewRunner(RunnerConfig{Model: m, Range: r, BlockSize: 16, NumBlocks: 64, KVDType: blocks.FP32})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		chain.Stages = append(chain.Stages, s)
	}
	// A prompt of 20 tokens for 3 sequences, then two decode steps of all three.
	steps := []*engine.StageStep{benchStep(m, 3, 20, 20), benchStep(m, 3, 21, 1), benchStep(m, 3, 22, 1)}
	var want [][]int
	for _, st := range steps {
		tokens, err := chain.Step(context.Background(), st)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, append([]int(nil), tokens...))
	}
	conn, err := grpc.NewClient(mid.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := pb.NewStageClient(conn).Steps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		var req pb.StepRequest
		encodeStep(&req, uint64(i+1), 5, st, st.Hidden)
		if err := stream.Send(&req); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	for i := 0; i < len(steps); {
		reply, err := stream.Recv()
		if err != nil {
			t.Fatalf("reply %d: %v", i+1, err)
		}
		if reply.Id == 0 {
			continue // a heartbeat
		}
		if got := fmt.Sprint(reply.Tokens); reply.Id != uint64(i+1) || got != fmt.Sprint(want[i]) {
			t.Errorf("reply %d: id %d tokens %s, want %v", i+1, reply.Id, got, want[i])
		}
		i++
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("after the last reply: %v, want the stream's end", err)
	}
}
