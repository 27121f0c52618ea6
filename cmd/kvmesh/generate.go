package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/sample"
	"github.com/kvmesh/kvmesh/model/tensor"
	"github.com/kvmesh/kvmesh/model/tokenizer"
)

func init() {
	register("generate", "generate text from a checkpoint, as llama2.c's run does", runGenerate)
}

// bosID is the token that starts (and, for the shipped model, ends) a story.
const bosID = 1

func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("generate", stderr)
	modelPath := fs.String("model", "models/stories260K.bin", "checkpoint `file` in the llama2.c format")
	tokPath := fs.String("tokenizer", "models/tok512.bin", "tokenizer `file` in the llama2.c format")
	prompt := fs.String("prompt", "", "prompt text")
	steps := fs.Int("steps", 256, "positions to run, the prompt's included (0 or past the context: the context length)")
	temperature := fs.Float64("temperature", 1.0, "sampling temperature; 0 is greedy")
	topP := fs.Float64("top-p", 0.9, "nucleus sampling threshold in (0,1); 0 or 1 turns it off")
	seed := fs.Uint64("seed", 0, "random seed (0: from the clock)")
	dtype := fs.String("kv-dtype", "fp32", "KV cache storage: fp32, fp16, int8 or int4")
	blockSize := fs.Int("block-size", 16, "tokens per KV block")
	noCache := fs.Bool("no-kv-cache", false, "recompute K and V of the whole sequence every step (the baseline)")
	threads := fs.Int("threads", 0, "kernel threads (0: one per core)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	params := sample.Params{Temperature: float32(*temperature), TopP: float32(*topP), Seed: *seed}
	if err := params.Validate(); err != nil {
		return err
	}

	g, err := openGenerator(genConfig{
		model: *modelPath, tokenizer: *tokPath, dtype: *dtype, blockSize: *blockSize,
		threads: *threads, noCache: *noCache,
	})
	if err != nil {
		return err
	}
	defer g.close()

	ids := g.tok.Encode(*prompt, true, false)
	seqLen := g.model.Config.SeqLen
	if *steps <= 0 || *steps > seqLen {
		*steps = seqLen
	}
	if len(ids) > seqLen {
		return fmt.Errorf("prompt is %d tokens, the model's context is %d", len(ids), seqLen)
	}
	st, err := g.generate(ctx, ids, *steps, params, func(prev, next int) {
		if piece := g.tok.Decode(prev, next); tokenizer.Printable(piece) {
			io.WriteString(stdout, piece)
		}
	})
	fmt.Fprintln(stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "prefill: %d tokens in %v (%.1f tok/s); decode: %d tokens in %v (%.1f tok/s)\n",
		st.promptTokens, st.prefill.Round(time.Microsecond), rate(st.promptTokens, st.prefill),
		st.generated, st.decode.Round(time.Microsecond), rate(st.generated, st.decode))
	return nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// genConfig names what a generator loads.
type genConfig struct {
	model, tokenizer string
	dtype            string
	blockSize        int
	threads          int
	noCache          bool
	maxTokens        int // per forward step; default: the model's context
	blocks           int // KV blocks; default: enough for one full-context sequence
}

// generator runs one sequence at a time the way llama2.c's run does: the prompt's tokens
// are forced, then each sampled token is fed back, until the step limit or a BOS.
type generator struct {
	ck      *ckpt.Checkpoint
	model   *model.Model
	tok     *tokenizer.Tokenizer
	runner  *model.Runner
	pool    *tensor.Pool
	cache   *blocks.Cache
	smp     *sample.Sampler
	noCache bool
}

func openGenerator(cfg genConfig) (*generator, error) {
	if cfg.blockSize <= 0 {
		return nil, fmt.Errorf("block size %d: must be positive", cfg.blockSize)
	}
	dt, err := blocks.ParseDType(cfg.dtype)
	if err != nil {
		return nil, err
	}
	ck, err := ckpt.Open(cfg.model)
	if err != nil {
		return nil, err
	}
	g := &generator{ck: ck, noCache: cfg.noCache}
	if g.model, err = model.New(ck); err != nil {
		g.close()
		return nil, err
	}
	if cfg.tokenizer != "" {
		if g.tok, err = tokenizer.Load(cfg.tokenizer, ck.Config.Vocab); err != nil {
			g.close()
			return nil, err
		}
	}
	seqLen := ck.Config.SeqLen
	if cfg.maxTokens <= 0 {
		cfg.maxTokens = seqLen
	}
	if cfg.blocks <= 0 {
		cfg.blocks = (seqLen + cfg.blockSize - 1) / cfg.blockSize
	}
	bc := blocks.DefaultConfig()
	bc.Shape = g.model.KVShape(cfg.blockSize)
	bc.DType = dt
	bc.NumBlocks = cfg.blocks
	if g.cache, err = blocks.New(bc); err != nil {
		g.close()
		return nil, err
	}
	g.pool = tensor.NewPool(cfg.threads)
	g.runner = model.NewRunner(g.model, model.RunnerConfig{MaxTokens: cfg.maxTokens, Pool: g.pool})
	g.smp = sample.New(ck.Config.Vocab)
	return g, nil
}

func (g *generator) close() {
	if g.runner != nil {
		g.runner.Close()
	}
	if g.pool != nil {
		g.pool.Close()
	}
	g.ck.Close()
}

// genStats times one generation.
type genStats struct {
	promptTokens, generated int
	prefill, decode         time.Duration
}

// generate runs positions 0..steps-1 over the prompt ids (BOS first) and calls emit for
// every token after the first, prompt tokens included, with the token before it.
func (g *generator) generate(ctx context.Context, ids []int, steps int, p sample.Params, emit func(prev, next int)) (genStats, error) {
	st := genStats{promptTokens: len(ids)}
	if len(ids) == 0 {
		return st, errors.New("empty prompt: at least the BOS token is needed")
	}
	if steps < len(ids) {
		// run.c runs only steps positions, all of them forced, printing the prompt up to
		// the token after the last position; nothing is sampled.
		for i := 1; i <= steps; i++ {
			emit(ids[i-1], ids[i])
		}
		return st, nil
	}
	for i := 1; i < len(ids); i++ {
		emit(ids[i-1], ids[i])
	}
	seq := append(make([]int, 0, steps), ids...)
	table := &blocks.Table{}
	defer g.cache.Release(table)

	feed := ids // tokens to run this step
	start := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		logits, err := g.step(table, seq, feed)
		if err != nil {
			return st, err
		}
		if len(feed) == len(ids) && st.prefill == 0 {
			st.prefill = time.Since(start)
			start = time.Now()
		}
		pos := len(seq) - 1
		next := g.smp.Sample(logits, p, pos-(len(ids)-1))
		st.generated++
		if next == bosID {
			break
		}
		emit(seq[pos], next)
		if len(seq) == steps {
			break
		}
		seq = append(seq, next)
		feed = seq[len(seq)-1:]
	}
	st.decode = time.Since(start)
	return st, nil
}

// step runs feed, the last tokens of seq, and returns the logits of the last one. Without
// a KV cache it runs the whole of seq into a fresh table and frees it again.
func (g *generator) step(table *blocks.Table, seq, feed []int) ([]float32, error) {
	if g.noCache {
		table = &blocks.Table{}
		defer g.cache.Release(table)
		feed = seq
	}
	max := g.runner.MaxTokens()
	var logits []float32
	for len(feed) > 0 {
		chunk := feed[:min(len(feed), max)]
		feed = feed[len(chunk):]
		if !g.cache.Append(table, len(chunk)) {
			return nil, fmt.Errorf("out of KV blocks at %d tokens", table.Len)
		}
		var err error
		if logits, err = g.runner.Forward([]model.Seq{{Table: table, Tokens: chunk}}, g.cache); err != nil {
			return nil, err
		}
	}
	return logits, nil
}
