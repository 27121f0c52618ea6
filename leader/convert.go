package leader

import (
	"fmt"
	"math"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// Protocol is the minor revision of kvmesh.v1's Leader service this package speaks
// (StatusReply.protocol).
const Protocol = 1

const (
	// minHeartbeatMS is the shortest heartbeat interval a server grants.
	minHeartbeatMS = 50
	// maxHeartbeatMS is the longest heartbeat interval a client asks for.
	maxHeartbeatMS = 60_000
	// acceptedKey is the response header a leader sends once it queued a request.
	acceptedKey = "kvmesh-accepted"
)

// toProto is the wire form of req.
func toProto(req engine.Request, model string, heartbeat time.Duration) (*pb.GenerateRequest, error) {
	out := &pb.GenerateRequest{
		Prompt:      make([]int32, len(req.Prompt)),
		StopTokens:  make([]int32, len(req.StopTokens)),
		Sampling:    &pb.Sampling{Temperature: req.Sampling.Temperature, TopP: req.Sampling.TopP, Seed: req.Sampling.Seed},
		Model:       model,
		HeartbeatMs: uint32(heartbeat / time.Millisecond),
	}
	var err error
	for i, t := range req.Prompt {
		if out.Prompt[i], err = int32Of("prompt token", t); err != nil {
			return nil, err
		}
	}
	for i, t := range req.StopTokens {
		if out.StopTokens[i], err = int32Of("stop token", t); err != nil {
			return nil, err
		}
	}
	if out.MaxTokens, err = int32Of("max tokens", req.MaxTokens); err != nil {
		return nil, err
	}
	if out.N, err = int32Of("n", req.N); err != nil {
		return nil, err
	}
	if out.Priority, err = int32Of("priority", req.Priority); err != nil {
		return nil, err
	}
	if out.Resumed, err = int32Of("resumed", req.Resumed); err != nil {
		return nil, err
	}
	return out, nil
}

// int32Of checks that v fits the wire's int32; the engine would refuse such a value
// anyway, so it is ErrInvalid.
func int32Of(what string, v int) (int32, error) {
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %s %d does not fit 32 bits", engine.ErrInvalid, what, v)
	}
	return int32(v), nil
}

// fromProto is the engine's form of a wire request; the engine validates the values.
func fromProto(in *pb.GenerateRequest) engine.Request {
	req := engine.Request{
		Prompt:     make([]int, len(in.Prompt)),
		MaxTokens:  int(in.MaxTokens),
		N:          int(in.N),
		StopTokens: make([]int, len(in.StopTokens)),
		Priority:   int(in.Priority),
		Resumed:    int(in.Resumed),
	}
	for i, t := range in.Prompt {
		req.Prompt[i] = int(t)
	}
	for i, t := range in.StopTokens {
		req.StopTokens[i] = int(t)
	}
	if s := in.Sampling; s != nil {
		req.Sampling = sample.Params{Temperature: s.Temperature, TopP: s.TopP, Seed: s.Seed}
	}
	return req
}

// finishToProto and finishFromProto translate finish reasons.
func finishToProto(f engine.FinishReason) pb.FinishReason {
	switch f {
	case engine.FinishLength:
		return pb.FinishReason_FINISH_REASON_LENGTH
	case engine.FinishStop:
		return pb.FinishReason_FINISH_REASON_STOP
	}
	return pb.FinishReason_FINISH_REASON_UNSPECIFIED
}

func finishFromProto(f pb.FinishReason) (engine.FinishReason, bool) {
	switch f {
	case pb.FinishReason_FINISH_REASON_LENGTH:
		return engine.FinishLength, true
	case pb.FinishReason_FINISH_REASON_STOP:
		return engine.FinishStop, true
	}
	return "", false
}

// eventFromProto is the engine's form of a wire event of a request with n samples. An
// event the request cannot have is an error.
func eventFromProto(ev *pb.GenerateEvent, n int) (out engine.Event, err error) {
	if ev.Index < 0 || int(ev.Index) >= n {
		return out, fmt.Errorf("event for sample %d of %d", ev.Index, n)
	}
	out.Index = int(ev.Index)
	switch k := ev.Kind.(type) {
	case *pb.GenerateEvent_Token:
		if k.Token < 0 {
			return out, fmt.Errorf("token id %d", k.Token)
		}
		out.Token = int(k.Token)
		return out, nil
	case *pb.GenerateEvent_Finish:
		var ok bool
		if out.Finish, ok = finishFromProto(k.Finish); !ok {
			return out, fmt.Errorf("unknown finish reason %v", k.Finish)
		}
		return out, nil
	}
	return out, fmt.Errorf("event of unknown kind %T", ev.Kind)
}
