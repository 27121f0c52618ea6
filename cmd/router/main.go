// Command router runs one router of a kvmesh cluster: the OpenAI-compatible HTTP API in
// front of the pipelines, KV-aware routing and failover. It embeds a NATS server for the
// leaders' cache events unless --nats-url names an external one.
//
//	router --id router-1 --http 127.0.0.1:8080 --gossip 127.0.0.1:7946 --nats-listen 127.0.0.1:4222
//
// Once it serves it prints one line on stdout: url=BASE_URL gossip=ADDR nats=URL.
//
// `router healthcheck [URL]` GETs URL (default http://127.0.0.1:8080/readyz) and exits 0
// on status 200: the container healthcheck of a FROM-scratch image.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kvmesh/kvmesh/internal/nodeflags"

	"github.com/kvmesh/kvmesh/frontend"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(nodeflags.Healthcheck(os.Args[2:]))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
}

func run() error {
	id := flag.String("id", "router-1", "router id, unique in the cluster")
	modelPath := flag.String("model", "models/stories260K.bin", "checkpoint `file` (its identity and shape)")
	tokPath := flag.String("tokenizer", "models/tok512.bin", "tokenizer `file`")
	name := flag.String("model-name", "", "served model id (default: the checkpoint's file name)")
	httpAddr := flag.String("http", "127.0.0.1:8080", "HTTP listen address")
	natsURL := flag.String("nats-url", "", "external NATS server (default: embed one)")
	natsListen := flag.String("nats-listen", "127.0.0.1:4222", "embedded NATS listen address")
	roundRobin := flag.Bool("round-robin", false, "route round robin instead of by cached prefix")
	shared := nodeflags.Register(flag.CommandLine, "127.0.0.1:7946")
	flag.Parse()
	if err := nodeflags.NoArgs(flag.CommandLine); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", *id)

	gc, err := shared.Gossip()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := frontend.Start(ctx, frontend.Config{
		ID: *id, Model: *modelPath, Tokenizer: *tokPath, ModelName: *name, HTTPAddr: *httpAddr, Advertise: shared.Advertise(),
		Gossip: gc, NATSURL: *natsURL, NATSListen: *natsListen, RoundRobin: *roundRobin, Logger: logger,
		TLS:  shared.TLS(),
		NATS: shared.NATS(),
	})
	if err != nil {
		return err
	}
	fmt.Printf("url=%s gossip=%s nats=%s\n", f.URL(), f.GossipAddr(), f.NATSURL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.Shutdown(sctx)
}
