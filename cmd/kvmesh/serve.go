package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/server"
)

func init() {
	register("serve", "serve a checkpoint over the OpenAI-compatible HTTP API", runServe)
}

// engineFlags binds the engine's configuration to flags; the distributed binaries reuse it.
func engineFlags(fs *flag.FlagSet) func() (engine.Config, error) {
	dtype := fs.String("kv-dtype", "fp32", "KV cache storage: fp32, fp16, int8 or int4")
	blockSize := fs.Int("block-size", 16, "tokens per KV block")
	kvMiB := fs.Int64("kv-memory", 64, "KV cache memory budget in MiB")
	batchTokens := fs.Int("max-batch-tokens", 256, "token budget of one step")
	maxRunning := fs.Int("max-running", 64, "most sequences in one step")
	maxWaiting := fs.Int("max-waiting", 256, "most queued requests; more get 429")
	chunk := fs.Int("prefill-chunk", 0, "most prompt tokens of one sequence per step (0: the step budget)")
	policy := fs.String("policy", "fcfs", "scheduling policy: fcfs, short or priority")
	preempt := fs.String("preemption", "recompute", "what a preempted sequence does: recompute or swap")
	noPrefix := fs.Bool("no-prefix-caching", false, "turn automatic prefix caching off")
	swapPath := fs.String("swap", "", "bbolt `file` of the disk tier (empty: no disk tier)")
	swapMiB := fs.Int64("swap-max", 0, "disk tier capacity in MiB (0: unlimited)")
	high := fs.Float64("swap-high", 0.9, "resident KV fraction past which cold blocks move to disk")
	low := fs.Float64("swap-low", 0.7, "resident KV fraction the disk tier brings usage back under")
	swapInt8 := fs.Bool("swap-int8", false, "store blocks on disk as int8 (lossy, ~4x smaller for fp32)")
	threads := fs.Int("threads", 0, "kernel threads (0: one per core)")
	return func() (engine.Config, error) {
		dt, err := blocks.ParseDType(*dtype)
		if err != nil {
			return engine.Config{}, err
		}
		pol, err := engine.ParsePolicy(*policy)
		if err != nil {
			return engine.Config{}, err
		}
		var pre engine.Preemption
		switch *preempt {
		case "recompute":
			pre = engine.Recompute
		case "swap":
			pre = engine.Swap
		default:
			return engine.Config{}, fmt.Errorf("unknown preemption %q (recompute, swap)", *preempt)
		}
		return engine.Config{
			BlockSize: *blockSize, KVDType: dt, KVMemory: *kvMiB << 20,
			MaxBatchTokens: *batchTokens, MaxRunning: *maxRunning, MaxWaiting: *maxWaiting,
			PrefillChunk: *chunk, Policy: pol, Preemption: pre, NoPrefixCaching: *noPrefix,
			SwapPath: *swapPath, SwapMaxBytes: *swapMiB << 20, SwapHigh: *high, SwapLow: *low,
			SwapInt8: *swapInt8, Threads: *threads,
		}, nil
	}
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	modelPath := fs.String("model", "models/stories260K.bin", "checkpoint `file` in the llama2.c format")
	tokPath := fs.String("tokenizer", "models/tok512.bin", "tokenizer `file` in the llama2.c format")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	name := fs.String("model-name", "", "served model id (default: the checkpoint's file name without extension)")
	drain := fs.Duration("drain", 30*time.Second, "how long shutdown waits for running requests")
	ecfg := engineFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ec, err := ecfg()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := server.Start(ctx, server.Config{
		Model: *modelPath, Tokenizer: *tokPath, Addr: *addr, ModelName: *name, Engine: ec, Logger: logger,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, srv.URL())
	select {
	case <-ctx.Done():
		logger.Info("shutting down: draining running requests", "timeout", *drain)
	case err := <-srv.Done():
		return fmt.Errorf("http server stopped: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	return srv.Shutdown(sctx)
}
