package leader

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model/sample"
)

// BenchmarkGenerate runs the longest greedy reference case on the engine directly and
// through a Client over loopback gRPC; the difference is the transport's cost per
// request and per token, in wall time (ns/token) and in CPU time of the process, engine
// and transport both (cpu-ns/token).
func BenchmarkGenerate(b *testing.B) {
	n := startNode(b, engine.Config{}, ServerConfig{})
	c := dial(b, n.addr, ClientConfig{})
	greedy, _ := loadReference(b)
	rc := greedy[0]
	for _, g := range greedy {
		if len(g.GeneratedIDs) > len(rc.GeneratedIDs) {
			rc = g
		}
	}
	wide := engine.Request{Prompt: []int{bos, 400}, MaxTokens: 100, N: 32, Sampling: sample.Params{Temperature: 1, Seed: 9}}
	for _, bc := range []struct {
		name string
		gen  interface {
			Submit(context.Context, engine.Request) (<-chan engine.Event, error)
		}
	}{{"engine", n.eng}, {"client", c}} {
		for _, rq := range []struct {
			name string
			req  engine.Request
		}{{"one", requestOf(rc)}, {"n32", wide}} {
			b.Run(bc.name+"/"+rq.name, func(b *testing.B) {
				tokens := 0
				cpu0 := cpuTime(b)
				for b.Loop() {
					events, err := bc.gen.Submit(context.Background(), rq.req)
					if err != nil {
						b.Fatal(err)
					}
					for ev := range events {
						if ev.Err != nil {
							b.Fatal(ev.Err)
						}
						if ev.Finish == "" {
							tokens++
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(tokens), "ns/token")
				b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(tokens), "cpu-ns/token")
			})
		}
	}
}

// cpuTime is the CPU time (user and system) the test process has used: unlike wall time,
// other jobs on the machine hardly move it.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
