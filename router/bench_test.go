package router

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/kvindex"
)

// BenchmarkOverhead compares one-token requests submitted straight to an engine with the
// same requests through the router (key computation, pick over the prefix index, relay of
// the events), and reports the p50 of each and their difference: what routing adds.
// go test ./router -run '^$' -bench Overhead
func BenchmarkOverhead(b *testing.B) {
	es := newEnginesB(b)
	ix, err := kvindex.NewIndex(kvindex.IndexConfig{})
	if err != nil {
		b.Fatal(err)
	}
	r := New(Config{KeySeed: seed, Picker: ix})
	r.SetLeader("a", es[0], 1000)
	r.SetLeader("b", es[1], 1000)
	prompt := make([]int, 64)
	for i := range prompt {
		prompt[i] = 3 + i*7%500
	}
	req := engine.Request{Prompt: prompt, MaxTokens: 1}
	run := func(l Leader) time.Duration {
		start := time.Now()
		ch, err := l.Submit(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		for ev := range ch {
			if ev.Err != nil {
				b.Fatal(ev.Err)
			}
		}
		return time.Since(start)
	}
	var direct, routed []time.Duration
	b.ResetTimer()
	for range b.N {
		direct = append(direct, run(es[0]))
		routed = append(routed, run(r))
	}
	p50 := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	pd, pr := p50(direct), p50(routed)
	b.ReportMetric(float64(pd.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(pr.Microseconds()), "routed-p50-µs")
	b.ReportMetric(float64((pr - pd).Microseconds()), "added-p50-µs")
}

func newEnginesB(b *testing.B) []*engine.Engine { return newEnginesTB(b, 2) }
