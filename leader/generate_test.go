package leader

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// TestReference: greedy and seeded sampled generations through a Client equal llama2.c's.
func TestReference(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	greedy, sampled := loadReference(t)
	for _, set := range []struct {
		name  string
		cases []refCase
	}{{"greedy", greedy}, {"sampled", sampled}} {
		for i, rc := range set.cases {
			res := run(t, c, requestOf(rc))
			want, finish := expect(rc)
			if res.err != nil {
				t.Fatalf("%s %d: %v", set.name, i, res.err)
			}
			if !slices.Equal(res.tokens[0], want) || res.finish[0] != finish {
				t.Errorf("%s %d (%q): got %v %s\nwant %v %s", set.name, i, rc.Prompt, res.tokens[0], res.finish[0], want, finish)
			}
		}
	}
}

// TestSamples: n = 2 through a Client gives sample i the draws of seed+i, as the engine
// does locally: sample 0 is the reference, sample 1 the engine's own run with seed+1.
func TestSamples(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	_, sampled := loadReference(t)
	rc := sampled[0]
	req := requestOf(rc)
	req.N = 2
	res := run(t, c, req)
	if res.err != nil {
		t.Fatal(res.err)
	}
	want, finish := expect(rc)
	if !slices.Equal(res.tokens[0], want) || res.finish[0] != finish {
		t.Errorf("sample 0: got %v %s, want %v %s", res.tokens[0], res.finish[0], want, finish)
	}
	one := requestOf(rc)
	one.Sampling.Seed++
	local := run(t, n.eng, one)
	if !slices.Equal(res.tokens[1], local.tokens[0]) || res.finish[1] != local.finish[0] {
		t.Errorf("sample 1: got %v %s, the engine with seed+1 gives %v %s", res.tokens[1], res.finish[1], local.tokens[0], local.finish[0])
	}
}

// heavy is a request that keeps the engine busy for seconds (64 samples of up to 500
// tokens; about 6 s on the 2-core test machine), so a test can act in its middle.
func heavy() engine.Request {
	return engine.Request{Prompt: []int{bos, 400}, MaxTokens: 500, N: 64, Sampling: sample.Params{Temperature: 1, Seed: 3}}
}

// TestConcurrent: every reference case submitted at once through one Client, batched
// together by the leader's engine, still equals the reference.
func TestConcurrent(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	greedy, sampled := loadReference(t)
	cases := append(append([]refCase(nil), greedy...), sampled...)
	results := make([]result, len(cases))
	var wg sync.WaitGroup
	for i, rc := range cases {
		wg.Go(func() {
			events, err := c.Submit(context.Background(), requestOf(rc))
			if err != nil {
				results[i].err = err
				return
			}
			results[i] = collect(events, 1)
		})
	}
	wg.Wait()
	for i, rc := range cases {
		want, finish := expect(rc)
		if res := results[i]; res.err != nil || !slices.Equal(res.tokens[0], want) || res.finish[0] != finish {
			t.Errorf("case %d (%q): got %v %s (%v)\nwant %v %s", i, rc.Prompt, res.tokens[0], res.finish[0], res.err, want, finish)
		}
	}
}

// TestRepliesCarrySteps: the events of one step of many samples travel together, in
// fewer replies than events, and as a whole they are the engine's events.
func TestRepliesCarrySteps(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	req := engine.Request{Prompt: []int{bos, 400}, MaxTokens: 50, N: 16, Sampling: sample.Params{Temperature: 1, Seed: 11}}
	in, err := toProto(req, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := pb.NewLeaderClient(c.conn).Generate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	replies, events := 0, 0
	got := result{tokens: make([][]int, req.N), finish: make([]engine.FinishReason, req.N)}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		replies++
		events += len(msg.Events)
		for _, e := range msg.Events {
			ev, err := eventFromProto(e, req.N)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Finish != "" {
				got.finish[ev.Index] = ev.Finish
			} else {
				got.tokens[ev.Index] = append(got.tokens[ev.Index], ev.Token)
			}
		}
	}
	t.Logf("%d events in %d replies", events, replies)
	if replies >= events {
		t.Errorf("%d events in %d replies: not batched", events, replies)
	}
	want := run(t, n.eng, req)
	for i := range req.N {
		if !slices.Equal(got.tokens[i], want.tokens[i]) || got.finish[i] != want.finish[i] {
			t.Errorf("sample %d: got %v %s, the engine gives %v %s", i, got.tokens[i], got.finish[i], want.tokens[i], want.finish[i])
		}
	}
}
