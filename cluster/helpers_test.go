package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testLogger discards logs unless KVMESH_TEST_LOG is set (then debug to stderr).
func testLogger() *slog.Logger {
	if os.Getenv("KVMESH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func workerMeta(id string) Meta {
	return Meta{ID: id, Role: RoleWorker, GRPCAddr: "127.0.0.1:9000", Model: "ab12", First: 0, Last: 4,
		Pipeline: "p0", FreeBlocks: 10, TotalBlocks: 16, State: StateReady, Memory: 96}
}

// startNode joins a node with LocalConfig, seeds and cfg changes from mod; it is shut
// down when the test ends.
func startNode(t *testing.T, meta Meta, seeds []string, mod func(*Config)) *Member {
	t.Helper()
	m, err := tryNode(t, meta, seeds, mod, 5*time.Second)
	if err != nil {
		t.Fatalf("join %s: %v", meta.ID, err)
	}
	return m
}

func tryNode(t *testing.T, meta Meta, seeds []string, mod func(*Config), timeout time.Duration) (*Member, error) {
	cfg := LocalConfig()
	cfg.Seeds = seeds
	cfg.Logger = testLogger()
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m, err := Join(ctx, cfg, meta)
	if err == nil {
		t.Cleanup(func() { m.Shutdown() })
	}
	return m, err
}

// waitFor polls cond every 10 ms until it returns nil, failing the test with cond's last
// error after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s: %v", d, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ids(ms []Meta) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// seesExactly reports whether m's view holds exactly the nodes want (by ID).
func seesExactly(m *Member, want ...string) error {
	got := ids(m.Members())
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s sees %v, want %v", m.Self().ID, got, want)
	}
	return nil
}

// recorder collects a subscription's events, with their arrival times.
type recorder struct {
	mu     sync.Mutex
	events []Event
	at     []time.Time
	cancel func()
	done   chan struct{}
}

func record(t *testing.T, m *Member) *recorder {
	ch, cancel := m.Subscribe()
	r := &recorder{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range ch {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.at = append(r.at, time.Now())
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// find returns the first event matching kind and id, and when it arrived.
func (r *recorder) find(kind Kind, id string) (Event, time.Time, bool) {
	return r.findAfter(kind, id, time.Time{})
}

// findAfter is find among the events that arrived at or after since.
func (r *recorder) findAfter(kind Kind, id string, since time.Time) (Event, time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.events {
		if ev.Kind == kind && ev.Meta.ID == id && !r.at[i].Before(since) {
			return ev, r.at[i], true
		}
	}
	return Event{}, time.Time{}, false
}

// state folds the events as a consumer would: the Meta of every node present.
func (r *recorder) state() map[string]Meta {
	st := map[string]Meta{}
	for _, ev := range r.all() {
		switch ev.Kind {
		case KindJoin, KindUpdate, KindRestart:
			st[ev.Meta.ID] = ev.Meta
		case KindLeave, KindDead:
			delete(st, ev.Meta.ID)
		}
	}
	return st
}

// last returns the last event about id.
func (r *recorder) last(id string) (Event, bool) {
	evs := r.all()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Meta.ID == id {
			return evs[i], true
		}
	}
	return Event{}, false
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// logCapture is a slog.Handler that keeps every record's message and attributes.
type logCapture struct {
	mu    *sync.Mutex
	lines *[]string
}

func newLogCapture() (*slog.Logger, func() []string) {
	c := logCapture{mu: &sync.Mutex{}, lines: new([]string)}
	return slog.New(c), func() []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Clone(*c.lines)
	}
}

func (c logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c logCapture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c logCapture) WithGroup(string) slog.Handler            { return c }
func (c logCapture) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	c.mu.Lock()
	*c.lines = append(*c.lines, line)
	c.mu.Unlock()
	return nil
}

// countLines returns how many captured lines contain all of subs.
func countLines(lines []string, subs ...string) int {
	n := 0
	for _, l := range lines {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			n++
		}
	}
	return n
}
