// Package server assembles a single-process kvmesh server: the checkpoint, the tokenizer,
// one engine over the whole model, and the OpenAI-compatible HTTP API on one listener.
// `kvmesh serve` runs it; tests start it in-process on a loopback port.
//
// Start returns once the listener accepts connections and the model is loaded; Shutdown
// stops taking requests, drains the running ones and releases everything in reverse order
// of acquisition (HTTP, engine, checkpoint).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kvmesh/kvmesh/api"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/tokenizer"
)

// Config names what a Server serves and where.
type Config struct {
	// Model is the checkpoint file (llama2.c format). Required.
	Model string
	// Tokenizer is the tokenizer file (llama2.c format). Required.
	Tokenizer string
	// Addr is the listen address. Default "127.0.0.1:8080"; port 0 picks a free one.
	Addr string
	// ModelName is the served model id. Default: the checkpoint's file name without
	// extension.
	ModelName string
	// Engine configures the scheduler and the KV cache; see engine.Config for defaults.
	Engine engine.Config
	// Logger receives all logs. Default slog.Default().
	Logger *slog.Logger
}

// Server is a running single-process server.
type Server struct {
	cfg    Config
	ck     *ckpt.Checkpoint
	engine *engine.Engine
	api    *api.Server
	http   *http.Server
	ln     net.Listener
	served chan error // Serve's result
}

// Start loads the model and serves it.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Model == "" || cfg.Tokenizer == "" {
		return nil, errors.New("server: a model and a tokenizer file are required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.ModelName == "" {
		cfg.ModelName = api.ModelName(cfg.Model)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, served: make(chan error, 1)}
	var err error
	if s.ck, err = ckpt.Open(cfg.Model); err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(cfg.Tokenizer, s.ck.Config.Vocab)
	if err != nil {
		s.ck.Close()
		return nil, err
	}
	m, err := model.New(s.ck)
	if err != nil {
		s.ck.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ec := cfg.Engine
	ec.Registry, ec.Logger = reg, cfg.Logger
	if s.engine, err = engine.New(m, ec); err != nil {
		s.ck.Close()
		return nil, err
	}
	ac := api.DefaultConfig()
	ac.Generator, ac.Tokenizer, ac.ModelName = s.engine, tok, cfg.ModelName
	ac.ContextLen, ac.Ready, ac.Registry, ac.Logger = s.ck.Config.SeqLen, s.engine.Ready, reg, cfg.Logger
	if s.api, err = api.New(ac); err != nil {
		s.closeEngine()
		return nil, err
	}
	var lc net.ListenConfig
	if s.ln, err = lc.Listen(ctx, "tcp", cfg.Addr); err != nil {
		s.closeEngine()
		return nil, fmt.Errorf("server: %w", err)
	}
	s.http = &http.Server{Handler: s.api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { s.served <- s.http.Serve(s.ln) }()
	cfg.Logger.Info("serving", "model", cfg.ModelName, "url", s.URL(), "kv_blocks", s.engine.Stats().BlocksTotal)
	return s, nil
}

// URL is the server's base URL, http://host:port.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Engine is the server's engine (for stats in tests and tools).
func (s *Server) Engine() *engine.Engine { return s.engine }

// Done delivers the HTTP server's error if it stops by itself.
func (s *Server) Done() <-chan error { return s.served }

// Shutdown drains running requests until ctx ends, then closes everything.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.api.Shutdown(ctx, s.http)
	if cerr := s.closeEngineCtx(ctx); err == nil {
		err = cerr
	}
	return err
}

func (s *Server) closeEngine() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.closeEngineCtx(ctx)
}

func (s *Server) closeEngineCtx(ctx context.Context) error {
	err := s.engine.Shutdown(ctx)
	if cerr := s.ck.Close(); err == nil {
		err = cerr
	}
	return err
}
