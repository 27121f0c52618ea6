package leader

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kvmesh/kvmesh/engine"
)

// TestStatusMapping: every error a leader reports becomes its gRPC code and comes back
// as the same sentinel; a status without details is ErrBroken; the caller's own
// cancellation stays a cancellation.
func TestStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{engine.ErrQueueFull, codes.ResourceExhausted},
		{engine.ErrTooLong, codes.InvalidArgument},
		{engine.ErrInvalid, codes.InvalidArgument},
		{engine.ErrClosed, codes.Unavailable},
		{ErrWrongModel, codes.FailedPrecondition},
		{errors.New("engine: forward: out of memory"), codes.Internal},
	} {
		wrapped := fmt.Errorf("context: %w", tc.err)
		st := toStatus(wrapped)
		if got := status.Code(st); got != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, got, tc.code)
		}
		back := fromStatus(context.Background(), "x:1", st)
		want := tc.err
		if tc.code == codes.Internal {
			want = ErrFailed
		}
		if !errors.Is(back, want) || errors.Is(back, ErrBroken) {
			t.Errorf("%v: came back as %v", tc.err, back)
		}
		if back.Error() != "leader x:1: "+wrapped.Error() {
			t.Errorf("%v: message %q", tc.err, back)
		}
	}
	for _, err := range []error{
		status.Error(codes.Unavailable, "connection reset"),
		status.Error(codes.Internal, "stream terminated by RST_STREAM"),
		errors.New("not a status"),
	} {
		if back := fromStatus(context.Background(), "x:1", err); !errors.Is(back, ErrBroken) {
			t.Errorf("%v came back as %v, want ErrBroken", err, back)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if back := fromStatus(ctx, "x:1", status.Error(codes.Canceled, "")); !errors.Is(back, context.Canceled) || errors.Is(back, ErrBroken) {
		t.Errorf("a cancelled call came back as %v", back)
	}
}

// TestErrors: the engine's refusals travel through a real connection and come back as
// the engine's sentinels from Submit.
func TestErrors(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	long := make([]int, 600)
	for i := range long {
		long[i] = 5
	}
	for _, tc := range []struct {
		name string
		req  engine.Request
		want error
	}{
		{"empty prompt", engine.Request{MaxTokens: 4}, engine.ErrInvalid},
		{"bad token", engine.Request{Prompt: []int{1, 9999}, MaxTokens: 4}, engine.ErrInvalid},
		{"negative token", engine.Request{Prompt: []int{1, -3}, MaxTokens: 4}, engine.ErrInvalid},
		{"no max tokens", engine.Request{Prompt: []int{1}}, engine.ErrInvalid},
		{"prompt too long", engine.Request{Prompt: long, MaxTokens: 4}, engine.ErrTooLong},
		{"too many new tokens", engine.Request{Prompt: []int{1, 2}, MaxTokens: 600}, engine.ErrTooLong},
		{"token past 32 bits", engine.Request{Prompt: []int{1, 1 << 40}, MaxTokens: 4}, engine.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Submit(context.Background(), tc.req)
			if !errors.Is(err, tc.want) || errors.Is(err, ErrBroken) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("wrong model", func(t *testing.T) {
		other := *c
		other.cfg.Model = "another model"
		if _, err := other.Submit(context.Background(), engine.Request{Prompt: []int{1}, MaxTokens: 1}); !errors.Is(err, ErrWrongModel) {
			t.Errorf("submit: got %v, want ErrWrongModel", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := Dial(ctx, n.addr, ClientConfig{Model: "another model"}); !errors.Is(err, ErrWrongModel) {
			t.Errorf("dial: got %v, want ErrWrongModel", err)
		}
	})
}

// TestQueueFull: with every sequence slot taken and one request waiting, the next is refused
// with engine.ErrQueueFull on the client's side.
func TestQueueFull(t *testing.T) {
	n := startNode(t, engine.Config{MaxRunning: 64, MaxWaiting: 1}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	release := n.occupy(t, true)
	defer release()
	_, err := c.Submit(context.Background(), engine.Request{Prompt: []int{bos}, MaxTokens: 4})
	if !errors.Is(err, engine.ErrQueueFull) {
		t.Fatalf("third request: got %v, want ErrQueueFull", err)
	}
}

// TestClosed: an engine that is shutting down refuses with engine.ErrClosed.
func TestClosed(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.eng.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, engine.Request{Prompt: []int{bos}, MaxTokens: 4}); !errors.Is(err, engine.ErrClosed) || errors.Is(err, ErrBroken) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

// TestClosedMidStream: a request the leader's engine aborts in the middle (a shutdown
// out of time) ends the client's stream with engine.ErrClosed, not ErrBroken: the leader
// said what happened.
func TestClosedMidStream(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	events := firstEvent(t, context.Background(), c, heavy())
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time to drain: the engine aborts what runs
	n.eng.Shutdown(ctx)
	err, _, _ := drain(events)
	if !errors.Is(err, engine.ErrClosed) || errors.Is(err, ErrBroken) {
		t.Fatalf("stream ended with %v, want engine.ErrClosed", err)
	}
}
