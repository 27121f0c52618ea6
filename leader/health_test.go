package leader

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
)

// TestStatus: Status reports the configured identity and the engine's counts.
func TestStatus(t *testing.T) {
	n := startNode(t, engine.Config{NumBlocks: 100}, ServerConfig{NodeID: "node-a", Incarnation: 7, FirstLayer: 0, EndLayer: 3})
	c := dial(t, n.addr, ClientConfig{Model: loadModel(t).Identity()})
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Status{
		Protocol: Protocol, NodeID: "node-a", Incarnation: 7, Model: loadModel(t).Identity(),
		FirstLayer: 0, EndLayer: 3, BlocksTotal: 100, BlocksFree: 100, Ready: true,
	}
	if st != want {
		t.Errorf("got %+v\nwant %+v", st, want)
	}
	// The prefix-cache counts: the second run of a prompt finds its full blocks cached.
	prompt := []int{1}
	for i := range 40 {
		prompt = append(prompt, 3+i*11%500)
	}
	for range 2 {
		if res := run(t, c, engine.Request{Prompt: prompt, MaxTokens: 2}); res.err != nil {
			t.Fatal(res.err)
		}
	}
	if st, err = c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	es := n.eng.Stats()
	if st.PrefixQueried != es.PrefixQueried || st.PrefixHit != es.PrefixHit || st.PrefixHit == 0 {
		t.Errorf("Status prefix counts %d hit of %d queried; the engine's %d of %d", st.PrefixHit, st.PrefixQueried, es.PrefixHit, es.PrefixQueried)
	}
}

// TestHealth: the standard health service says SERVING while the engine is ready and
// NOT_SERVING once it shuts down.
func TestHealth(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{HealthInterval: 10 * time.Millisecond})
	conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("check %q: %v", service, err)
		}
		return r.Status
	}
	for _, svc := range []string{"", "kvmesh.v1.Leader"} {
		if st := check(svc); st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%q: %v while ready", svc, st)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.eng.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "NOT_SERVING", func() bool {
		return check("") == healthpb.HealthCheckResponse_NOT_SERVING && check("kvmesh.v1.Leader") == healthpb.HealthCheckResponse_NOT_SERVING
	})
}

// TestShutdown: a graceful shutdown lets a running stream finish, refuses new calls,
// and returns once the stream is done.
func TestShutdown(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	req := engine.Request{Prompt: []int{bos, 400}, MaxTokens: 200, N: 16, Sampling: sample.Params{Temperature: 1, Seed: 5}}
	events := firstEvent(t, context.Background(), c, req)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if n.allFree() {
		t.Fatal("the request ended before the shutdown began")
	}
	if err := n.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	res := collect(events, req.N)
	if res.err != nil || slices.Contains(res.finish, "") {
		t.Errorf("the running stream ended with %v, finish reasons %v", res.err, res.finish)
	}
	if _, err := c.Submit(context.Background(), req); !errors.Is(err, ErrBroken) {
		t.Errorf("a request after shutdown: got %v, want ErrBroken", err)
	}
	if err := <-n.served; err != nil {
		t.Errorf("serve: %v", err)
	}
	n.served <- nil // for the cleanup
}

// TestDialNothing: dialling a port where nothing listens fails with ErrUnreachable.
func TestDialNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, addr, ClientConfig{}); !errors.Is(err, ErrUnreachable) || ctx.Err() != nil {
		t.Errorf("got %v, want ErrUnreachable", err)
	}
}
