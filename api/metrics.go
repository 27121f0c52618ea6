package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the HTTP-level series; the engine registers its own (queues, KV blocks,
// prefix hits, swap) into the same registry.
type metrics struct {
	requests  *prometheus.CounterVec   // by endpoint and status code
	inFlight  prometheus.Gauge         // generations being served
	ttft      *prometheus.HistogramVec // by endpoint, seconds
	tpot      *prometheus.HistogramVec // by endpoint, seconds
	generated prometheus.Counter       // completion tokens sent
	prompt    prometheus.Counter       // prompt tokens admitted
	duration  *prometheus.HistogramVec // by endpoint, seconds
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvmesh_http_requests_total",
			Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvmesh_http_generations_in_flight",
			Help: "Generation requests being served.",
		}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvmesh_time_to_first_token_seconds",
			Help:    "From the request's arrival to its first generated token.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms .. 33 s
		}, []string{"endpoint"}),
		tpot: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvmesh_time_per_output_token_seconds",
			Help:    "Between two consecutive generated tokens of one sample.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 0.1 ms .. 3.3 s
		}, []string{"endpoint"}),
		generated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvmesh_generation_tokens_total",
			Help: "Tokens generated and sent to clients.",
		}),
		prompt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvmesh_prompt_tokens_total",
			Help: "Prompt tokens of admitted requests.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvmesh_http_request_duration_seconds",
			Help:    "From a request's arrival to the end of its response.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18), // 1 ms .. 131 s
		}, []string{"endpoint"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.inFlight, m.ttft, m.tpot, m.generated, m.prompt, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
