package leader

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// TestConfigValidate: zero values take the defaults; unusable values are ErrConfig.
func TestConfigValidate(t *testing.T) {
	var s ServerConfig
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	if d := DefaultServerConfig(); s.HealthInterval != d.HealthInterval || s.PingInterval != d.PingInterval || s.HandshakeTimeout != d.HandshakeTimeout || s.Logger == nil {
		t.Errorf("server defaults not filled: %+v", s)
	}
	var c ClientConfig
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c != DefaultClientConfig() {
		t.Errorf("client defaults: got %+v, want %+v", c, DefaultClientConfig())
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"layers backwards", (&ServerConfig{FirstLayer: 3, EndLayer: 2}).validate()},
		{"negative layer", (&ServerConfig{FirstLayer: -1}).validate()},
		{"negative ping", (&ServerConfig{PingInterval: -time.Second}).validate()},
		{"client negative", (&ClientConfig{DeadAfter: -1}).validate()},
		{"dead before heartbeat", (&ClientConfig{Heartbeat: time.Second, DeadAfter: time.Second}).validate()},
		{"heartbeat too slow", (&ClientConfig{Heartbeat: 2 * time.Minute, DeadAfter: 3 * time.Minute}).validate()},
	} {
		if !errors.Is(tc.err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", tc.name, tc.err)
		}
	}
}

// TestRequestRoundTrip: a request crosses the wire unchanged; values past 32 bits are
// refused before sending.
func TestRequestRoundTrip(t *testing.T) {
	req := engine.Request{
		Prompt: []int{1, 2, 511}, MaxTokens: 7, N: 3, Priority: -4, Resumed: 1,
		Sampling:   sample.Params{Temperature: 0.8, TopP: 0.95, Seed: math.MaxUint64},
		StopTokens: []int{13, 1},
	}
	in, err := toProto(req, "m", 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if in.Model != "m" || in.HeartbeatMs != 500 {
		t.Errorf("model %q heartbeat %d", in.Model, in.HeartbeatMs)
	}
	got := fromProto(in)
	if got.MaxTokens != req.MaxTokens || got.N != req.N || got.Priority != req.Priority || got.Resumed != req.Resumed ||
		got.Sampling != req.Sampling || len(got.Prompt) != 3 || got.Prompt[2] != 511 || len(got.StopTokens) != 2 || got.StopTokens[0] != 13 {
		t.Errorf("got %+v, want %+v", got, req)
	}
	if fromProto(&pb.GenerateRequest{}).Sampling != (sample.Params{}) {
		t.Error("a missing sampling message is not greedy")
	}
	for _, bad := range []engine.Request{
		{Prompt: []int{1 << 33}},
		{Prompt: []int{1}, MaxTokens: 1 << 40},
		{Prompt: []int{1}, StopTokens: []int{-1 << 40}},
	} {
		if _, err := toProto(bad, "", 0); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("%+v: got %v, want ErrInvalid", bad, err)
		}
	}
}

// TestEventFromProto: events a request cannot have are protocol errors.
func TestEventFromProto(t *testing.T) {
	tok := func(i, t int32) *pb.GenerateEvent {
		return &pb.GenerateEvent{Index: i, Kind: &pb.GenerateEvent_Token{Token: t}}
	}
	fin := func(i int32, f pb.FinishReason) *pb.GenerateEvent {
		return &pb.GenerateEvent{Index: i, Kind: &pb.GenerateEvent_Finish{Finish: f}}
	}
	for _, tc := range []struct {
		ev   *pb.GenerateEvent
		want engine.Event
		ok   bool
	}{
		{tok(0, 5), engine.Event{Token: 5}, true},
		{tok(1, 0), engine.Event{Index: 1}, true},
		{fin(1, pb.FinishReason_FINISH_REASON_STOP), engine.Event{Index: 1, Finish: engine.FinishStop}, true},
		{fin(0, pb.FinishReason_FINISH_REASON_LENGTH), engine.Event{Finish: engine.FinishLength}, true},
		{tok(2, 5), engine.Event{}, false},
		{tok(-1, 5), engine.Event{}, false},
		{tok(0, -5), engine.Event{}, false},
		{fin(0, pb.FinishReason_FINISH_REASON_UNSPECIFIED), engine.Event{}, false},
		{fin(0, 99), engine.Event{}, false},
		{&pb.GenerateEvent{}, engine.Event{}, false},
	} {
		got, err := eventFromProto(tc.ev, 2)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("%v: got %+v, %v", tc.ev, got, err)
		}
	}
}
