package engine

import "github.com/prometheus/client_golang/prometheus"

// metrics are the engine's Prometheus series. The HTTP layer owns the per-request ones
// (time to first token, time per output token, generated tokens).
type metrics struct {
	running, waiting, swapped prometheus.Gauge
	blocks                    *prometheus.GaugeVec // by tier and state
	usage                     prometheus.Gauge
	hitRatio                  prometheus.Gauge
	swapBytes                 *prometheus.GaugeVec // by direction; totals since start
	preemptions               prometheus.Gauge
	stepSeconds               prometheus.Histogram
	batchTokens               prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvmesh_requests_running", Help: "Sequences in the running batch."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvmesh_requests_waiting", Help: "Sequences waiting for admission."}),
		swapped: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvmesh_requests_swapped", Help: "Preempted sequences whose blocks are on disk."}),
		blocks: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kvmesh_kv_blocks", Help: "KV blocks by tier (memory, disk) and state (used, free, cached)."},
			[]string{"tier", "state"}),
		usage:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvmesh_kv_usage_ratio", Help: "Share of memory KV blocks held by sequences."}),
		hitRatio:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvmesh_prefix_cache_hit_ratio", Help: "Share of prompt tokens found in the prefix cache since start."}),
		swapBytes:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kvmesh_swap_bytes", Help: "Bytes moved to (out) and from (in) the disk tier since start."}, []string{"direction"}),
		preemptions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kvmesh_preemptions", Help: "Sequences preempted since start."}),
		stepSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kvmesh_step_seconds", Help: "Duration of one forward step.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		batchTokens: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kvmesh_step_sequences", Help: "Sequences in one forward step.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8)}),
	}
	if reg != nil {
		reg.MustRegister(m.running, m.waiting, m.swapped, m.blocks, m.usage, m.hitRatio, m.swapBytes,
			m.preemptions, m.stepSeconds, m.batchTokens)
	}
	return m
}

func (m *metrics) update(st Stats, t *tier) {
	m.running.Set(float64(st.Running))
	m.waiting.Set(float64(st.Waiting))
	m.swapped.Set(float64(st.Swapped))
	used := st.BlocksTotal - st.BlocksFree
	m.blocks.WithLabelValues("memory", "used").Set(float64(used))
	m.blocks.WithLabelValues("memory", "free").Set(float64(st.BlocksFree))
	m.blocks.WithLabelValues("memory", "cached").Set(float64(st.BlocksCached))
	if st.BlocksTotal > 0 {
		m.usage.Set(float64(used) / float64(st.BlocksTotal))
	}
	if st.PrefixQueried > 0 {
		m.hitRatio.Set(float64(st.PrefixHit) / float64(st.PrefixQueried))
	}
	m.preemptions.Set(float64(st.Preemptions))
	m.swapBytes.WithLabelValues("out").Set(float64(st.SwapBytesOut))
	m.swapBytes.WithLabelValues("in").Set(float64(st.SwapBytesIn))
	if t != nil {
		m.blocks.WithLabelValues("disk", "cached").Set(float64(len(t.onDisk)))
	}
}
