package node

import (
	"context"
	"slices"
	"testing"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/internal/reftest"
	"github.com/kvmesh/kvmesh/model/sample"
)

// generate runs c on the leader's engine and returns its tokens, or the error it ended
// with.
func generate(t *testing.T, n *Node, c reftest.Case) ([]int, error) {
	t.Helper()
	events, err := n.Engine().Submit(context.Background(), engine.Request{
		Prompt: c.PromptIDs, MaxTokens: c.MaxTokens(), StopTokens: []int{reftest.BOS},
		Sampling: sample.Params{Temperature: c.Temperature, TopP: c.TopP, Seed: c.Seed},
	})
	if err != nil {
		return nil, err
	}
	var got []int
	for ev := range events {
		if ev.Err != nil {
			return got, ev.Err
		}
		if ev.Finish == "" {
			got = append(got, ev.Token)
		}
	}
	return got, nil
}

// TestReplacedStageWhileIdle: a pipeline's last stage is replaced while the leader is
// idle, so no step fails. The new stage starts from an empty cache; the leader must not
// serve its old prefix cache over it. The request that finds the stages replaced fails
// with a resumable error, and the same request then equals the reference again.
func TestReplacedStageWhileIdle(t *testing.T) {
	greedy, _ := reftest.Load(t)
	c := greedy[0].Continued(48) // a prompt of several full blocks, which the prefix cache keeps
	lead := startNode(t, "worker-1", "0:3", nil)
	seeds := []string{lead.member.Addr()}
	_, stopStage := startStoppable(t, "worker-2", "3:5", seeds)
	waitFor(t, "the leader's pipeline ready", lead.ready)
	if got, err := generate(t, lead, c); err != nil || !slices.Equal(got, c.Tokens()) {
		t.Fatalf("before the replacement: %v, %v; want %v", got, err, c.Tokens())
	}
	old := lead.down.addrs
	stopStage()
	stage := startNode(t, "worker-2", "3:5", seeds)
	waitFor(t, "the leader connected to the new stage", func() bool {
		lead.down.mu.Lock()
		defer lead.down.mu.Unlock()
		return lead.down.client != nil && !slices.Equal(lead.down.addrs, old) && slices.Equal(lead.down.addrs, []string{stage.GRPCAddr()})
	})
	got, err := generate(t, lead, c)
	if err == nil && !slices.Equal(got, c.Tokens()) {
		t.Fatalf("served over the new stage's empty cache: got %v, want %v", got, c.Tokens())
	}
	if err != nil {
		// The first request after the replacement ends resumably, the session is dialed
		// afresh, and the retry is exact.
		waitFor(t, "the leader connected again", func() bool {
			lead.down.mu.Lock()
			defer lead.down.mu.Unlock()
			return lead.down.client != nil
		})
		if got, err = generate(t, lead, c); err != nil || !slices.Equal(got, c.Tokens()) {
			t.Fatalf("after the replacement: %v, %v; want %v", got, err, c.Tokens())
		}
	}
}
