package node

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/cluster"
	"github.com/kvmesh/kvmesh/internal/reftest"
)

// startNode starts a worker of the shipped model in this process, listening on 0.0.0.0
// for gRPC and on loopback for HTTP, and shuts it down when the test ends.
func startNode(t *testing.T, id, layers string, seeds []string) *Node {
	t.Helper()
	n, _ := startStoppable(t, id, layers, seeds)
	return n
}

// startStoppable is startNode, with a function that shuts the node down earlier.
func startStoppable(t *testing.T, id, layers string, seeds []string) (*Node, func()) {
	t.Helper()
	gc := cluster.LocalConfig()
	gc.Seeds = seeds
	n, err := Start(context.Background(), Config{ID: id, Model: reftest.Model, Range: layers, Pipeline: "p0",
		GRPCAddr: "0.0.0.0:0", HTTPAddr: "127.0.0.1:0", Gossip: gc, UpdateInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n.Shutdown(ctx)
		})
	}
	t.Cleanup(stop)
	return n, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
