package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// health is a worker's HTTP server for probes and scraping: GET /healthz answers 200 while
// the process runs; GET /readyz 200 once the node is ready (Node.ready), 503 before and
// while it drains; GET /metrics the Prometheus registry (the process and Go collectors,
// and a leader's engine series).
type health struct {
	ln  net.Listener
	srv *http.Server
	reg *prometheus.Registry
}

func startHealth(addr string, ready func() bool, log *slog.Logger) (*health, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: HTTP: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h := &health{ln: ln, reg: reg, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("node: HTTP server stopped", "err", err)
		}
	}()
	return h, nil
}

// close stops the server; a nil health is a no-op.
func (h *health) close() {
	if h != nil {
		h.srv.Close()
	}
}
