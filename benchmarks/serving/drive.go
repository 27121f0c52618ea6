package serving

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kvmesh/kvmesh/engine"
)

// outcome is what one request produced: its tokens and when its events came.
type outcome struct {
	tokens    []int
	submitted time.Time
	first     time.Time // first event (a token, or the finish of a sample that stopped at once)
	done      time.Time // channel closed
	err       error
}

// ttft is the time from Submit to the first event.
func (o outcome) ttft() time.Duration { return o.first.Sub(o.submitted) }

// run submits reqs at once and waits for all of them; it returns their outcomes in order.
func run(ctx context.Context, e *engine.Engine, reqs []engine.Request) ([]outcome, error) {
	outs := make([]outcome, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		outs[i].submitted = time.Now()
		ch, err := e.Submit(ctx, r)
		if err != nil {
			wg.Wait()
			return nil, fmt.Errorf("serving: submit request %d: %w", i, err)
		}
		wg.Add(1)
		go func(o *outcome) {
			defer wg.Done()
			o.read(ch)
		}(&outs[i])
	}
	wg.Wait()
	return outs, firstErr(outs)
}

// read takes every event of one request.
func (o *outcome) read(ch <-chan engine.Event) {
	for ev := range ch {
		if o.first.IsZero() {
			o.first = time.Now()
		}
		switch {
		case ev.Err != nil:
			o.err = ev.Err
		case ev.Finish == "":
			o.tokens = append(o.tokens, ev.Token)
		}
	}
	o.done = time.Now()
}

// firstErr is the first request error, wrapped in ErrRequest.
func firstErr(outs []outcome) error {
	for i, o := range outs {
		if o.err != nil {
			return fmt.Errorf("%w: request %d: %w", ErrRequest, i, o.err)
		}
	}
	return nil
}

// generated counts the tokens of outs.
func generated(outs []outcome) int {
	n := 0
	for _, o := range outs {
		n += len(o.tokens)
	}
	return n
}

// settle waits until the engine has published the snapshot of its last step (it is idle)
// and returns it. Polls with a deadline.
func settle(ctx context.Context, e *engine.Engine) (engine.Stats, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.Stats()
		if st.Running == 0 && st.Waiting == 0 && st.Swapped == 0 {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("serving: engine not idle after its requests ended: %+v", st)
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		time.Sleep(time.Millisecond)
	}
}

// shutdown stops e, giving it a few seconds to finish.
func shutdown(e *engine.Engine) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		return fmt.Errorf("serving: engine shutdown: %w", err)
	}
	return nil
}

// Rate is a throughput: requests and generated tokens over wall time, and over the CPU
// time the process used meanwhile. Other processes loading the machine lengthen the wall
// time but not (much) the CPU time, so RequestsCPU is the steadier figure on a shared
// machine; it does not see what a run loses by waiting (for the disk, or idle cores).
type Rate struct {
	Requests    int     `json:"requests"`
	Tokens      int     `json:"generated_tokens"`
	Seconds     float64 `json:"seconds"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	RequestsS   float64 `json:"requests_per_s"`
	TokensS     float64 `json:"tokens_per_s"`
	RequestsCPU float64 `json:"requests_per_cpu_s"`
}

// clock measures one run's wall and CPU time.
type clock struct {
	wall time.Time
	cpu  time.Duration
}

func startClock() clock { return clock{wall: time.Now(), cpu: cpuTime()} }

// rate is the throughput of requests and tokens since the clock started.
func (c clock) rate(requests, tokens int) Rate {
	r := Rate{Requests: requests, Tokens: tokens, Seconds: time.Since(c.wall).Seconds(), CPUSeconds: (cpuTime() - c.cpu).Seconds()}
	if r.Seconds > 0 {
		r.RequestsS = float64(requests) / r.Seconds
		r.TokensS = float64(tokens) / r.Seconds
	}
	if r.CPUSeconds > 0 {
		r.RequestsCPU = float64(requests) / r.CPUSeconds
	}
	return r
}
