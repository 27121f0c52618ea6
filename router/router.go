package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/kvindex"
)

// Leader runs generations: a leader.Client over gRPC, or an engine in the same process.
type Leader interface {
	Submit(ctx context.Context, req engine.Request) (<-chan engine.Event, error)
}

// Picker chooses among candidate leaders by cached prefix and load (kvindex.Subscriber,
// kvindex.Index): it returns the position of the best candidate, -1 for none.
type Picker interface {
	Pick(cands []kvindex.Candidate, keys []blocks.BlockHash) (best, matched int)
}

// ErrNoLeader: no leader is available to take the request. It wraps
// engine.ErrUnavailable: a client retries later.
var ErrNoLeader = fmt.Errorf("router: no pipeline is serving: %w", engine.ErrUnavailable)

// Config configures a Router.
type Config struct {
	// KeySeed and BlockSize give the prompt's block keys (kvindex.Keys): the cluster's
	// engines must use the same. BlockSize default 16.
	KeySeed   blocks.BlockHash
	BlockSize int
	// Picker chooses by cached prefix; nil routes round robin.
	Picker Picker
	// RoundRobin ignores the Picker: the baseline of the KV-aware routing benchmark.
	RoundRobin bool
	// Patience is how long a request waits for a leader to take it (none serving, all
	// failing) before it fails. Default 30s.
	Patience time.Duration
	// Quarantine is how long a leader that failed is avoided. Default 2s.
	Quarantine time.Duration
	// RetryWait is the pause before retrying when no leader is available. Default 100ms.
	RetryWait time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) fill() {
	if c.BlockSize == 0 {
		c.BlockSize = 16
	}
	if c.Patience == 0 {
		c.Patience = 30 * time.Second
	}
	if c.Quarantine == 0 {
		c.Quarantine = 2 * time.Second
	}
	if c.RetryWait == 0 {
		c.RetryWait = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Router routes generations over the leaders it is told about. Safe for concurrent use.
type Router struct {
	cfg Config

	mu      sync.Mutex // protects leaders and next
	leaders map[string]*leaderState
	next    int // round-robin position
}

type leaderState struct {
	id       string
	leader   Leader
	inflight int       // this router's requests running on it
	free     int       // free KV blocks it gossips
	failedAt time.Time // last failure, for the quarantine
}

// New returns a router with no leaders.
func New(cfg Config) *Router {
	cfg.fill()
	return &Router{cfg: cfg, leaders: make(map[string]*leaderState)}
}

// SetLeader adds or replaces the leader of a serving pipeline, with its free KV blocks.
func (r *Router) SetLeader(id string, l Leader, freeBlocks int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.leaders[id]; ok && st.leader == l {
		st.free = freeBlocks
		return
	}
	r.leaders[id] = &leaderState{id: id, leader: l, free: freeBlocks}
}

// RemoveLeader forgets a leader (dead, left, or its pipeline broken).
func (r *Router) RemoveLeader(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.leaders, id)
}

// Leaders returns the ids of the known leaders, sorted.
func (r *Router) Leaders() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.leaders))
	for id := range r.leaders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// pick chooses a leader for keys, avoiding the ids in tried and quarantined leaders (unless
// nothing else is left), and counts the request in flight on it.
func (r *Router) pick(keys []blocks.BlockHash, tried []string) (*leaderState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	var cands []*leaderState
	for _, healthyOnly := range []bool{true, false} {
		for _, st := range r.leaders {
			if slices.Contains(tried, st.id) {
				continue
			}
			if healthyOnly && now.Sub(st.failedAt) < r.cfg.Quarantine {
				continue
			}
			cands = append(cands, st)
		}
		if len(cands) > 0 {
			break
		}
	}
	if len(cands) == 0 {
		return nil, false
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].id < cands[j].id })
	best := cands[r.next%len(cands)]
	r.next++
	if r.cfg.Picker != nil && !r.cfg.RoundRobin {
		kc := make([]kvindex.Candidate, len(cands))
		for i, st := range cands {
			kc[i] = kvindex.Candidate{Node: st.id, QueueDepth: st.inflight, FreeBlocks: st.free}
		}
		if i, _ := r.cfg.Picker.Pick(kc, keys); i >= 0 {
			best = cands[i]
		}
	}
	best.inflight++
	return best, true
}

func (r *Router) done(st *leaderState, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.inflight--
	if failed {
		st.failedAt = time.Now()
	}
}

// Submit routes req. Errors that no other leader would answer differently (a prompt too
// long, an invalid request) come back at once; the rest are retried on other leaders.
func (r *Router) Submit(ctx context.Context, req engine.Request) (<-chan engine.Event, error) {
	n := max(req.N, 1)
	out := make(chan engine.Event, n*(req.MaxTokens+1)+1)
	first := make([]*attempt, n)
	for i := range n {
		one := req
		one.N = 1
		one.Sampling.Seed = req.Sampling.Seed + uint64(i)
		a, err := r.start(ctx, one, nil)
		if err != nil {
			for _, s := range first[:i] {
				s.cancel()
				r.done(s.st, false)
			}
			return nil, err
		}
		first[i] = a
	}
	var wg sync.WaitGroup
	failed := make(chan error, n)
	for i, a := range first {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.follow(ctx, i, a, out); err != nil {
				failed <- err
			}
		}()
	}
	go func() {
		wg.Wait()
		close(failed)
		if err, ok := <-failed; ok {
			out <- engine.Event{Err: err}
		}
		close(out)
	}()
	return out, nil
}

// attempt is one request's run on one leader.
type attempt struct {
	req    engine.Request
	st     *leaderState
	events <-chan engine.Event
	cancel context.CancelFunc
	tried  []string
}

// start submits req (whose prompt holds the history so far) to the best leader not yet
// tried, moving on past leaders that refuse it for their own reasons, and waiting for one
// to appear for up to Config.Patience.
func (r *Router) start(ctx context.Context, req engine.Request, tried []string) (*attempt, error) {
	keys := kvindex.Keys(r.cfg.KeySeed, req.Prompt, r.cfg.BlockSize)
	deadline := time.Now().Add(r.cfg.Patience)
	var last error = ErrNoLeader
	for {
		st, ok := r.pick(keys, tried)
		if !ok {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("router: no leader took the request in %v: %w", r.cfg.Patience, last)
			}
			tried = tried[:0] // every leader was tried: they may have recovered since
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(r.cfg.RetryWait):
			}
			continue
		}
		tried = append(tried, st.id)
		actx, cancel := context.WithCancel(ctx)
		events, err := st.leader.Submit(actx, req)
		if err == nil {
			return &attempt{req: req, st: st, events: events, cancel: cancel, tried: tried}, nil
		}
		cancel()
		if !retryable(err) {
			r.done(st, false)
			return nil, err
		}
		r.done(st, !errors.Is(err, engine.ErrQueueFull))
		last = err
		if errors.Is(err, engine.ErrQueueFull) && len(tried) >= r.leaderCount() {
			return nil, err // every leader is full: the client retries later (429)
		}
		r.cfg.Logger.Warn("leader refused a request; trying another", "leader", st.id, "err", err)
	}
}

func (r *Router) leaderCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.leaders)
}

// follow relays one sample's events from its attempts to out, as sample index, resuming
// it elsewhere when an attempt fails.
func (r *Router) follow(ctx context.Context, index int, a *attempt, out chan<- engine.Event) error {
	for {
		ok, err := r.relay(index, a, out)
		a.cancel()
		r.done(a.st, !ok)
		if ok || !retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.cfg.Logger.Warn("pipeline failed mid-generation; resuming on another",
			"leader", a.st.id, "generated", a.req.Resumed, "err", err)
		next, serr := r.start(ctx, a.req, a.tried)
		if serr != nil {
			return fmt.Errorf("router: resuming after %v: %w", err, serr)
		}
		a = next
	}
}

// relay forwards an attempt's events. It reports ok when the sample finished; otherwise
// err says why the attempt ended, and a.req has grown by the tokens relayed, ready to be
// resumed.
func (r *Router) relay(index int, a *attempt, out chan<- engine.Event) (ok bool, err error) {
	for ev := range a.events {
		switch {
		case ev.Err != nil:
			err = ev.Err
		case ev.Finish != "":
			out <- engine.Event{Index: index, Finish: ev.Finish}
			return true, nil
		default:
			a.req.Prompt = append(slices.Clip(a.req.Prompt), ev.Token)
			a.req.Resumed++
			out <- engine.Event{Index: index, Token: ev.Token}
		}
	}
	if err == nil {
		err = fmt.Errorf("router: leader %s ended a stream without finishing it", a.st.id)
	}
	return false, err
}

// retryable reports whether another leader may succeed where one failed.
func retryable(err error) bool {
	switch {
	case errors.Is(err, engine.ErrTooLong), errors.Is(err, engine.ErrInvalid),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}
