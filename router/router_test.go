package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/internal/reftest"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/kvindex"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/sample"
)

// refCase is one reference generation of llama2.c's run.c.
type refCase = reftest.Case

func requestOf(c refCase) engine.Request {
	return engine.Request{
		Prompt: c.PromptIDs, MaxTokens: c.MaxTokens(),
		Sampling: sample.Params{Temperature: c.Temperature, TopP: c.TopP, Seed: c.Seed},
	}
}

func loadReference(t *testing.T) []refCase { return reftest.All(t) }

var seed = kvindex.Seed("stories260K", "tok512", 16)

func newEngines(t *testing.T, n int, cfg engine.Config) []*engine.Engine {
	return newEnginesCfg(t, n, cfg)
}

func newEnginesTB(tb testing.TB, n int) []*engine.Engine {
	return newEnginesCfg(tb, n, engine.Config{})
}

func newEnginesCfg(t testing.TB, n int, cfg engine.Config) []*engine.Engine {
	t.Helper()
	ck, err := ckpt.Open(reftest.Model)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.New(ck)
	if err != nil {
		t.Fatal(err)
	}
	cfg.KeySeed, cfg.BlockSize = seed, 16
	out := make([]*engine.Engine, n)
	for i := range out {
		if out[i], err = engine.New(m, cfg); err != nil {
			t.Fatal(err)
		}
		e := out[i]
		t.Cleanup(func() { e.Shutdown(context.Background()) })
	}
	return out
}

// collect reads a request's events into its samples' tokens, checking that every sample
// finishes once.
func collect(t *testing.T, ch <-chan engine.Event, n int) [][]int {
	t.Helper()
	got := make([][]int, n)
	finished := make([]int, n)
	for ev := range ch {
		switch {
		case ev.Err != nil:
			t.Fatalf("request failed: %v", ev.Err)
		case ev.Finish != "":
			finished[ev.Index]++
		default:
			got[ev.Index] = append(got[ev.Index], ev.Token)
		}
	}
	for i, f := range finished {
		if f != 1 {
			t.Errorf("sample %d finished %d times", i, f)
		}
	}
	return got
}

func TestRoutesAndMatchesReference(t *testing.T) {
	es := newEngines(t, 2, engine.Config{})
	r := New(Config{KeySeed: seed})
	for i, e := range es {
		r.SetLeader(fmt.Sprintf("leader-%d", i), e, 100)
	}
	for _, c := range loadReference(t) {
		req := requestOf(c)
		req.N = 2
		ch, err := r.Submit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, ch, 2)
		if fmt.Sprint(got[0]) != fmt.Sprint(c.Tokens()) {
			t.Errorf("prompt %q: got %v\nwant %v", c.Prompt, got[0], c.Tokens())
		}
	}
}

// killer is a leader that shuts its engine down, aborting everything running on it, once
// a given number of tokens has streamed through it and armed is closed.
type killer struct {
	e     *engine.Engine
	after int
	armed chan struct{}
	once  sync.Once
}

func (k *killer) Submit(ctx context.Context, req engine.Request) (<-chan engine.Event, error) {
	in, err := k.e.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make(chan engine.Event, cap(in))
	go func() {
		defer close(out)
		n := 0
		for ev := range in {
			out <- ev
			if n++; n == k.after {
				<-k.armed
				k.once.Do(func() {
					ctx, cancel := context.WithCancel(context.Background())
					cancel() // no grace: abort what runs
					k.e.Shutdown(ctx)
				})
			}
		}
	}()
	return out, nil
}

// TestFailoverResumesExactly kills a leader's engine in the middle of generations: the
// router resumes every request on the other leader, and the streams equal the reference,
// with no token missing or repeated.
func TestFailoverResumesExactly(t *testing.T) {
	cases := loadReference(t)
	for _, after := range []int{1, 30, 120} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			es := newEngines(t, 2, engine.Config{})
			r := New(Config{KeySeed: seed, RetryWait: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			// The kill waits until every request is in, so that none is submitted while
			// "a" is dead and "b" not yet there.
			k := &killer{e: es[0], after: after, armed: make(chan struct{})}
			r.SetLeader("a", k, 100)
			chans := make([]<-chan engine.Event, len(cases))
			for i, c := range cases {
				var err error
				if chans[i], err = r.Submit(context.Background(), requestOf(c)); err != nil {
					t.Fatal(err)
				}
			}
			r.SetLeader("b", es[1], 100)
			close(k.armed)
			for i, ch := range chans {
				got := collect(t, ch, 1)[0]
				if fmt.Sprint(got) != fmt.Sprint(cases[i].Tokens()) {
					t.Errorf("prompt %q seed %d:\n got %v\nwant %v", cases[i].Prompt, cases[i].Seed, got, cases[i].Tokens())
				}
			}
		})
	}
}

func TestErrorsThatNoLeaderCures(t *testing.T) {
	es := newEngines(t, 1, engine.Config{})
	r := New(Config{KeySeed: seed, Patience: 50 * time.Millisecond, RetryWait: 10 * time.Millisecond})
	if _, err := r.Submit(context.Background(), engine.Request{Prompt: []int{1}, MaxTokens: 1}); err == nil {
		t.Error("a request with no leader at all succeeded")
	}
	r.SetLeader("a", es[0], 10)
	if _, err := r.Submit(context.Background(), engine.Request{Prompt: []int{1}, MaxTokens: 100000}); err == nil {
		t.Error("a request past the context was accepted")
	}
}

// indexOf feeds engines' prefix-cache events into a kvindex.Index, as the NATS subscriber
// does, so routing can be tested in one process.
type indexOf struct {
	mu  sync.Mutex // protects ix, es and seq
	ix  *kvindex.Index
	es  map[string]*engine.Engine
	seq map[string]uint64
}

func (p *indexOf) Pick(cands []kvindex.Candidate, keys []blocks.BlockHash) (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for node, e := range p.es {
		var evs []kvindex.Event
		for _, ev := range e.Events(nil) {
			evs = append(evs, kvindex.Event{Kind: ev.Kind, Key: ev.Hash})
		}
		if len(evs) > 0 {
			p.ix.Apply(&kvindex.Batch{Node: node, Incarnation: 1, First: p.seq[node] + 1, Events: evs})
			p.seq[node] += uint64(len(evs))
		}
	}
	return p.ix.Pick(cands, keys)
}

// TestKVAwareRoutingHitRatio routes groups of requests that share long prefixes over two
// leaders, with the prefix index and round robin, and compares the prefix-cache hit ratios.
func TestKVAwareRoutingHitRatio(t *testing.T) {
	ratio := func(leaders int, roundRobin bool) float64 {
		es := newEngines(t, 2, engine.Config{RecordEvents: true})
		es = es[:leaders]
		ix, err := kvindex.NewIndex(kvindex.IndexConfig{})
		if err != nil {
			t.Fatal(err)
		}
		p := &indexOf{ix: ix, es: map[string]*engine.Engine{}, seq: map[string]uint64{}}
		r := New(Config{KeySeed: seed, Picker: p, RoundRobin: roundRobin})
		for i, e := range es {
			id := string(rune('a' + i))
			p.es[id] = e
			r.SetLeader(id, e, 1000)
		}
		for round := range 4 {
			for g := range 5 { // odd, so round robin does not happen to keep a group on one leader
				prompt := []int{1}
				for i := range 96 {
					prompt = append(prompt, 3+(g*131+i*7)%500)
				}
				prompt = append(prompt, 3+round)
				ch, err := r.Submit(context.Background(), engine.Request{Prompt: prompt, MaxTokens: 4})
				if err != nil {
					t.Fatal(err)
				}
				collect(t, ch, 1)
			}
		}
		var q, h int64
		for _, e := range es {
			st := e.Stats()
			q, h = q+st.PrefixQueried, h+st.PrefixHit
		}
		return float64(h) / float64(q)
	}
	one, aware, rr := ratio(1, false), ratio(2, false), ratio(2, true)
	t.Logf("prefix-cache hit ratio: one pipeline %.3f, KV-aware over two %.3f, round robin over two %.3f", one, aware, rr)
	if aware < 0.9*one {
		t.Errorf("KV-aware routing hit ratio %.3f is below 90%% of one pipeline's %.3f", aware, one)
	}
	if aware < rr+0.1 {
		t.Errorf("KV-aware routing hit ratio %.3f is not clearly above round robin's %.3f", aware, rr)
	}
}
