package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Run sends cfg's requests and returns their Report. A config out of range is an
// ErrConfig error and no report. Requests that fail do not fail the run: their Records say
// why and the Summary counts them by kind. If ctx is cancelled, Run aborts the requests in
// flight and returns the report of what was sent together with ctx's error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	prompts, err := cfg.Prompts.Generate(cfg.Requests+cfg.Warmup, cfg.Seed)
	if err != nil {
		return nil, err
	}
	var arrivals []time.Duration
	if cfg.Rate > 0 {
		arrivals = poissonArrivals(cfg.Requests, cfg.Rate, cfg.Seed)
	}
	c := newClient(cfg, time.Now())
	defer c.close()
	if c.cfg.Model == "" {
		if c.cfg.Model, err = c.listedModel(ctx); err != nil {
			return nil, err
		}
		cfg.Model = c.cfg.Model
	}
	budgets := maxTokens(len(prompts), cfg.MinTokens, cfg.MaxTokens, cfg.Seed)
	warmFailed := 0
	for i := cfg.Requests; i < len(prompts) && ctx.Err() == nil; i++ {
		rec := Record{Index: i, MaxTokens: budgets[i]}
		c.do(ctx, prompts[i], &rec)
		if !rec.OK() {
			warmFailed++
		}
	}
	recs := make([]Record, cfg.Requests)
	for i := range recs {
		recs[i].MaxTokens = budgets[i]
	}
	sent := make([]bool, cfg.Requests) // sent[i]: request i was sent; written once by its sender
	start := time.Now()
	stop := start.Add(cfg.Duration)
	c.start = start
	if arrivals != nil {
		runOpen(ctx, c, prompts, arrivals, recs, sent, stop)
	} else {
		runClosed(ctx, c, prompts, recs, sent, stop)
	}
	done := make([]Record, 0, len(recs))
	for i := range recs {
		if sent[i] {
			done = append(done, recs[i])
		}
	}
	rep := newReport(cfg, done, len(recs)-len(done))
	rep.Summary.WarmupFailed = warmFailed
	return rep, ctx.Err()
}

// runClosed runs cfg.Concurrency workers (at least one), each sending the next request
// when its previous one ends, until all are sent, stop has passed, or ctx is done.
func runClosed(ctx context.Context, c *client, prompts []Prompt, recs []Record, sent []bool, stop time.Time) {
	var next atomic.Int64 // the next request index to claim
	var wg sync.WaitGroup
	for range max(c.cfg.Concurrency, 1) {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(stop) {
				i := int(next.Add(1) - 1)
				if i >= len(recs) {
					return
				}
				recs[i].Index = i
				recs[i].Scheduled = c.since()
				sent[i] = true
				c.do(ctx, prompts[i], &recs[i])
			}
		})
	}
	wg.Wait()
}

// runOpen sends request i at arrivals[i] (an offset from the run's start), each in its own
// goroutine, waiting for a free slot first when cfg.Concurrency caps the requests in
// flight. Arrivals due after stop, or after ctx is done, are not sent.
func runOpen(ctx context.Context, c *client, prompts []Prompt, arrivals []time.Duration, recs []Record, sent []bool, stop time.Time) {
	var slots chan struct{} // one element per request in flight; nil: no cap
	if c.cfg.Concurrency > 0 {
		slots = make(chan struct{}, c.cfg.Concurrency)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range recs {
		due := c.start.Add(arrivals[i])
		if !due.Before(stop) {
			return
		}
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if !time.Now().Before(stop) {
				<-slots
				return
			}
		}
		recs[i].Index = i
		recs[i].Scheduled = arrivals[i]
		sent[i] = true
		wg.Go(func() {
			c.do(ctx, prompts[i], &recs[i])
			if slots != nil {
				<-slots
			}
		})
	}
}
