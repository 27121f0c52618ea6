// Command node runs one worker of a kvmesh cluster: it holds a layer range of the model
// and serves as a pipeline's leader (layer 0) or as one of its later stages.
//
//	node --id worker-1 --model models/stories260K.bin --layers 0:3 --pipeline p0 \
//	     --grpc 127.0.0.1:9001 --gossip 127.0.0.1:7947 --seeds 127.0.0.1:7946 \
//	     --nats nats://127.0.0.1:4222 --swap /var/lib/kvmesh/worker-1.swap
//
// Without --layers the cluster's placement chooses the range: the gap a dead worker left,
// or a new pipeline, sized by the memory every worker offers (--memory, gossiped). It
// prints "ready" on stdout once it serves. It exits with status 1, and says why on stderr,
// when the cluster refuses it: another model's checkpoint ("peer refused ... another
// model"), or a --layers range that overlaps a live worker of its pipeline or does not
// fit --memory ("layer range refused").
//
// --http ADDR serves GET /healthz (200 while the process runs), /readyz (200 once its
// layers are loaded, it has joined and it is ready) and /metrics (Prometheus).
// `node healthcheck [URL]` GETs URL (default http://127.0.0.1:8080/readyz) and exits 0
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

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/node"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(nodeflags.Healthcheck(os.Args[2:]))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err) // node's errors say "node:" themselves
		os.Exit(1)
	}
}

func run() error {
	id := flag.String("id", "", "node id, unique in the cluster (required)")
	modelPath := flag.String("model", "models/stories260K.bin", "checkpoint `file`")
	layers := flag.String("layers", "", "layer range first:last (empty: placement chooses)")
	pipeline := flag.String("pipeline", "p0", "pipeline of an explicit layer range")
	grpcAddr := flag.String("grpc", "127.0.0.1:0", "gRPC listen address")
	httpAddr := flag.String("http", "", "HTTP listen address for /healthz, /readyz and /metrics (default: off)")
	natsURL := flag.String("nats", "", "NATS URL for KV cache events (a leader publishes there)")
	kvMiB := flag.Int64("kv-memory", 64, "KV cache memory in MiB")
	memMiB := flag.Int64("memory", 0, "memory this worker offers for weights and KV cache, in MiB; placement balances layers by it (0: --kv-memory plus the weights of --layers, or of the whole model)")
	blockSize := flag.Int("block-size", 16, "tokens per KV block")
	batch := flag.Int("max-batch-tokens", 256, "token budget of one step")
	swapPath := flag.String("swap", "", "bbolt `file` of the disk tier for this node's layers (empty: none)")
	swapHigh := flag.Float64("swap-high", 0.9, "a leader moves cold cached blocks to disk past this fraction of its KV memory")
	swapLow := flag.Float64("swap-low", 0.7, "... until usage is under this fraction")
	swapMiB := flag.Int64("swap-max", 0, "disk tier size bound in MiB (0: unbounded); a full tier degrades to recomputing")
	shared := nodeflags.Register(flag.CommandLine, "127.0.0.1:0")
	flag.Parse()
	if err := nodeflags.NoArgs(flag.CommandLine); err != nil {
		return err
	}
	if *id == "" {
		return fmt.Errorf("node: --id is required")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", *id)
	gc, err := shared.Gossip()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.Start(ctx, node.Config{
		ID: *id, Model: *modelPath, Range: *layers, Pipeline: *pipeline, GRPCAddr: *grpcAddr, Memory: *memMiB << 20,
		Advertise: shared.Advertise(), HTTPAddr: *httpAddr,
		Gossip: gc, NATSURL: *natsURL, NATS: shared.NATS(), Logger: logger,
		TLS: shared.TLS(),
		Engine: engine.Config{KVMemory: *kvMiB << 20, BlockSize: *blockSize, MaxBatchTokens: *batch,
			SwapPath: *swapPath, SwapHigh: *swapHigh, SwapLow: *swapLow, SwapMaxBytes: *swapMiB << 20},
	})
	if err != nil {
		return err
	}
	fmt.Printf("ready %s layers %s pipeline %s grpc %s\n", *id, n.Range(), n.Pipeline(), n.GRPCAddr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Shutdown(sctx)
}
