package leader

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/internal/reftest"
	"github.com/kvmesh/kvmesh/internal/testmodel"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/sample"
)

// Paths of the shipped model files, relative to this package.
const (
	tokenizerPath = "../models/tok512.bin"
	bos           = reftest.BOS
)

// refCase is one reference generation of llama2.c's run.
type refCase = reftest.Case

// expect is the tokens the engine must emit for the case and how the sample ends: run.c's
// generated ids without the BOS that ends a story.
func expect(c refCase) ([]int, engine.FinishReason) {
	if c.EndsAtBOS() {
		return c.Tokens(), engine.FinishStop
	}
	return c.Tokens(), engine.FinishLength
}

func requestOf(c refCase) engine.Request {
	return engine.Request{
		Prompt:    c.PromptIDs,
		MaxTokens: c.MaxTokens(),
		Sampling:  sample.Params{Temperature: c.Temperature, TopP: c.TopP, Seed: c.Seed},
	}
}

func loadReference(t testing.TB) (greedy, sampled []refCase) { return reftest.Load(t) }

func loadModel(t testing.TB) *model.Model { return testmodel.Load(t) }

var quiet = slog.New(slog.DiscardHandler)

// node is a leader under test: a real engine on the shipped model served on a loopback
// port.
type node struct {
	eng    *engine.Engine
	srv    *Server
	addr   string
	served chan error // Serve's result
}

// startNode starts an engine with ecfg and a Server over it with scfg on 127.0.0.1:0.
// The cleanup stops both and checks that every KV block came back.
func startNode(t testing.TB, ecfg engine.Config, scfg ServerConfig) *node {
	t.Helper()
	return startNodeAt(t, "127.0.0.1:0", ecfg, scfg)
}

// startNodeAt is startNode on addr.
func startNodeAt(t testing.TB, addr string, ecfg engine.Config, scfg ServerConfig) *node {
	t.Helper()
	m := loadModel(t)
	ecfg.Logger = quiet
	if ecfg.Threads == 0 {
		ecfg.Threads = 1 // leave a core to the transport and to other packages' tests
	}
	eng, err := engine.New(m, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	if scfg.Model == "" {
		scfg.Model = m.Identity()
	}
	scfg.Logger = quiet
	srv, err := NewServer(eng, scfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{eng: eng, srv: srv, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { n.served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-n.served; err != nil {
			t.Errorf("serve: %v", err)
		}
		n.served <- nil // for a test that stops the node again
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Shutdown(ctx); err != nil {
			t.Errorf("engine shutdown: %v", err)
		}
		if st := eng.Stats(); st.BlocksFree != st.BlocksTotal {
			t.Errorf("%d of %d KV blocks free after shutdown", st.BlocksFree, st.BlocksTotal)
		}
	})
	return n
}

// dial connects a client to addr, closed at cleanup.
func dial(t testing.TB, addr string, cfg ClientConfig) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// result is what one request produced.
type result struct {
	tokens [][]int
	finish []engine.FinishReason
	err    error
}

func collect(events <-chan engine.Event, n int) result {
	res := result{tokens: make([][]int, n), finish: make([]engine.FinishReason, n)}
	for ev := range events {
		switch {
		case ev.Err != nil:
			res.err = ev.Err
		case ev.Finish != "":
			res.finish[ev.Index] = ev.Finish
		default:
			res.tokens[ev.Index] = append(res.tokens[ev.Index], ev.Token)
		}
	}
	return res
}

// run submits req through g and collects its result.
func run(t *testing.T, g interface {
	Submit(context.Context, engine.Request) (<-chan engine.Event, error)
}, req engine.Request) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, err := g.Submit(ctx, req)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	n := max(req.N, 1)
	return collect(events, n)
}

// waitFor polls cond every 2 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// occupy fills the engine of n with heavy (all 64 sequence slots, for seconds) and, with
// waiting, queues one more request behind it; release cancels both and waits for them.
// With MaxWaiting 1 the engine then refuses the next request with ErrQueueFull.
func (n *node) occupy(t testing.TB, waiting bool) (release func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var chans []<-chan engine.Event
	events, err := n.eng.Submit(ctx, heavy())
	if err != nil {
		t.Fatal(err)
	}
	chans = append(chans, events)
	waitFor(t, 10*time.Second, "the heavy request to run", func() bool { return n.eng.Stats().Running == 64 })
	if waiting {
		if events, err = n.eng.Submit(ctx, engine.Request{Prompt: []int{bos}, MaxTokens: 4}); err != nil {
			t.Fatal(err)
		}
		chans = append(chans, events)
	}
	return func() {
		cancel()
		for _, ch := range chans {
			for range ch {
			}
		}
	}
}
