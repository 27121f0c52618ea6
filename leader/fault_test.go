package leader

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/engine"
)

// firstEvent submits req through c and returns its channel once the first event came.
func firstEvent(t *testing.T, ctx context.Context, c *Client, req engine.Request) <-chan engine.Event {
	t.Helper()
	events, err := c.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Err != nil {
			t.Fatalf("first event: %v", ev.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10 s")
	}
	return events
}

// drain reads events to the end and returns the last error, when the channel closed and
// when the last event before the error came.
func drain(events <-chan engine.Event) (err error, closed, last time.Time) {
	last = time.Now()
	for ev := range events {
		if ev.Err != nil {
			err = ev.Err
		} else {
			last = time.Now()
		}
	}
	return err, time.Now(), last
}

// allFree reports whether the engine holds no request and every block is free.
func (n *node) allFree() bool {
	st := n.eng.Stats()
	return st.BlocksFree == st.BlocksTotal && st.Running == 0 && st.Waiting == 0
}

// holding reports whether heavy's 64 samples hold a block each of their own.
func (n *node) holding() bool {
	st := n.eng.Stats()
	return st.BlocksTotal-st.BlocksFree > 64
}

// TestStopMidStream: a leader stopped in the middle of a generation ends the client's
// stream with ErrBroken at once, and the engine cancels the request.
func TestStopMidStream(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	events := firstEvent(t, context.Background(), c, heavy())
	waitFor(t, 10*time.Second, "the request to hold blocks", n.holding)
	start := time.Now()
	n.srv.Stop()
	err, closed, _ := drain(events)
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("stream ended with %v, want ErrBroken", err)
	}
	took := closed.Sub(start)
	t.Logf("stream broken %v after Stop: %v", took, err)
	if took > 2*time.Second {
		t.Errorf("the client took %v to notice", took)
	}
	waitFor(t, 3*time.Second, "the engine to free the request's blocks", n.allFree)
}

// TestCancelFreesBlocks: cancelling a request on the client frees its blocks in the
// leader's engine long before the request could have finished, and ends the channel with
// the cancellation, not ErrBroken.
func TestCancelFreesBlocks(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	events := firstEvent(t, ctx, c, heavy())
	waitFor(t, 10*time.Second, "the request to hold blocks", n.holding)
	start := time.Now()
	cancel()
	err, _, _ := drain(events)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrBroken) {
		t.Errorf("stream ended with %v, want context.Canceled", err)
	}
	waitFor(t, 3*time.Second, "the engine to free the request's blocks", n.allFree)
	t.Logf("blocks free %v after cancel", time.Since(start))
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("the connection did not survive a cancelled stream: %v", err)
	}
}

// TestSilentLeader: a leader that stops answering without closing the connection (a
// frozen network between the two) is given up DeadAfter after its last message, with
// ErrBroken; the leader's keepalive then notices the silent client and cancels the
// request, long before it could have finished (with 16 tokens a step, the 64 samples of
// heavy take tens of seconds).
func TestSilentLeader(t *testing.T) {
	n := startNode(t, engine.Config{MaxBatchTokens: 16}, ServerConfig{})
	p := startProxy(t, n.addr)
	cfg := DefaultClientConfig()
	c := dial(t, p.addr(), cfg)
	events := firstEvent(t, context.Background(), c, heavy())
	waitFor(t, 10*time.Second, "the request to hold blocks", n.holding)
	p.freeze()
	start := time.Now()
	err, closed, last := drain(events)
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("stream ended with %v, want ErrBroken", err)
	}
	silent := closed.Sub(last)
	t.Logf("silent leader given up %v after its last message, %v after the freeze (DeadAfter %v): %v", silent, closed.Sub(start), cfg.DeadAfter, err)
	if silent < cfg.DeadAfter-cfg.Heartbeat || silent > cfg.DeadAfter+2*time.Second {
		t.Errorf("gave up %v after the last message, want about %v", silent, cfg.DeadAfter)
	}
	waitFor(t, 15*time.Second, "the leader to drop the silent client's request", n.allFree)
	t.Logf("leader freed the blocks %v after the freeze", time.Since(start))
}

// TestQuietStreamLives: a stream with nothing to say for longer than DeadAfter (its
// request waits behind another) is kept alive by heartbeats and completes.
func TestQuietStreamLives(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	cfg := ClientConfig{Heartbeat: 200 * time.Millisecond, DeadAfter: 2 * time.Second}
	c := dial(t, n.addr, cfg)
	release := n.occupy(t, false)
	greedy, _ := loadReference(t)
	events, err := c.Submit(context.Background(), requestOf(greedy[0]))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(cfg.DeadAfter + time.Second) // the request waits: nothing but heartbeats flow
	release()
	res := collect(events, 1)
	want, finish := expect(greedy[0])
	if res.err != nil || len(res.tokens[0]) != len(want) || res.finish[0] != finish {
		t.Errorf("the quiet request ended with %v after %d tokens (%s)", res.err, len(res.tokens[0]), res.finish[0])
	}
}

// TestGarbage: random bytes, an HTTP/1 request, a silent connection and a half-sent
// preface on the gRPC port close those connections only; the server keeps serving.
func TestGarbage(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{HandshakeTimeout: 200 * time.Millisecond})
	rng := rand.New(rand.NewPCG(12, 34))
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"random bytes", junk},
		{"http/1 request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"http/2 preface then junk", append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), junk[:4096]...)},
		{"half a preface", []byte("PRI * HTTP/2.0\r\n")},
		{"nothing", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", n.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(tc.send); err != nil {
				t.Logf("write: %v", err) // the server may close before reading it all
			}
			// The server closes the connection: reading ends with EOF or a reset, not the
			// deadline.
			_, err = io.Copy(io.Discard, bufio.NewReader(conn))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("the server kept the connection open: %v", err)
			}
		})
	}
	c := dial(t, n.addr, ClientConfig{})
	greedy, _ := loadReference(t)
	if res := run(t, c, requestOf(greedy[0])); res.err != nil {
		t.Fatalf("after the garbage: %v", res.err)
	}
	select {
	case err := <-n.served:
		t.Fatalf("Serve returned: %v", err)
	default:
	}
}

// proxy forwards TCP connections to a target until frozen; then it stops moving bytes
// either way but keeps every connection open, as a network that drops packets does.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // protects frozen
	frozen bool
	thaw   chan struct{} // never closed: frozen copiers block on it until the test ends
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, thaw: make(chan struct{})}
	var conns sync.WaitGroup
	var mu sync.Mutex // protects open
	var open []net.Conn
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			open = append(open, in, out)
			mu.Unlock()
			conns.Add(2)
			go func() { defer conns.Done(); p.pipe(out, in) }()
			go func() { defer conns.Done(); p.pipe(in, out) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		close(p.thaw)
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// pipe copies src to dst until an error, or until frozen (then it waits for the end).
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if frozen {
			<-p.thaw
			return
		}
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// TestSlowReader: a reader that stops reading for longer than DeadAfter, with the
// client's buffer full, is not mistaken for a silent leader; every event still arrives.
func TestSlowReader(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{Heartbeat: 50 * time.Millisecond, DeadAfter: 200 * time.Millisecond})
	c.maxBuffer = 4
	_, sampled := loadReference(t)
	rc := sampled[0]
	events, err := c.Submit(context.Background(), requestOf(rc))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the buffer to fill", func() bool { return len(events) == cap(events) })
	time.Sleep(3 * 200 * time.Millisecond) // longer than DeadAfter, reading nothing
	res := collect(events, 1)
	want, finish := expect(rc)
	if res.err != nil || !slices.Equal(res.tokens[0], want) || res.finish[0] != finish {
		t.Errorf("got %v %s (%v)\nwant %v %s", res.tokens[0], res.finish[0], res.err, want, finish)
	}
}

// TestLeaderRestart: a Client whose leader was down for a second reaches the leader
// started again at the same address by itself, within about MaxReconnectDelay, and its
// requests succeed again.
func TestLeaderRestart(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{Incarnation: 1})
	c := dial(t, n.addr, ClientConfig{})
	n.srv.Stop()
	// A second of failed calls: the client's reconnection attempts back off meanwhile.
	for down := time.Now(); time.Since(down) < time.Second; time.Sleep(50 * time.Millisecond) {
		if _, err := c.Status(context.Background()); !errors.Is(err, ErrBroken) {
			t.Fatalf("status of a stopped leader: got %v, want ErrBroken", err)
		}
	}
	startNodeAt(t, n.addr, engine.Config{}, ServerConfig{Incarnation: 2})
	start := time.Now()
	waitFor(t, 10*time.Second, "the client to reach the restarted leader", func() bool {
		st, err := c.Status(context.Background())
		return err == nil && st.Incarnation == 2
	})
	t.Logf("reconnected %v after the restart", time.Since(start))
	greedy, _ := loadReference(t)
	if res := run(t, c, requestOf(greedy[0])); res.err != nil {
		t.Fatal(res.err)
	}
}

// TestClientClose: closing a Client ends its open streams with ErrBroken, and the leader
// frees their blocks.
func TestClientClose(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	events := firstEvent(t, context.Background(), c, heavy())
	waitFor(t, 10*time.Second, "the request to hold blocks", n.holding)
	c.Close()
	if err, _, _ := drain(events); !errors.Is(err, ErrBroken) {
		t.Errorf("stream ended with %v, want ErrBroken", err)
	}
	waitFor(t, 3*time.Second, "the engine to free the request's blocks", n.allFree)
}
