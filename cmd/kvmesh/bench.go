package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/preset"
	"github.com/kvmesh/kvmesh/model/sample"
)

func init() {
	register("bench", "measure decode, prefill, batched and cache-less generation speed", runBench)
}

// benchReport is what kvmesh bench measures; every rate is in tokens per second.
type benchReport struct {
	Model          string            `json:"model"`
	Params         int64             `json:"params"`
	Threads        int               `json:"threads"`
	KVDType        string            `json:"kv_dtype"`
	CPU            string            `json:"cpu"`
	DecodeOne      float64           `json:"decode_one_seq_tok_s"`
	Prefill        float64           `json:"prefill_tok_s"`
	PrefillTokens  int               `json:"prefill_tokens"`
	Batched        []batchedRate     `json:"batched_decode"`
	CacheVsNoCache []cacheComparison `json:"cache_vs_no_cache"`
}

type batchedRate struct {
	Sequences int     `json:"sequences"`
	Aggregate float64 `json:"aggregate_tok_s"`
	PerSeq    float64 `json:"per_seq_tok_s"`
	VsOne     float64 `json:"ratio_vs_one_seq"`
}

type cacheComparison struct {
	Tokens    int     `json:"tokens"`
	WithS     float64 `json:"with_cache_s"`
	WithoutS  float64 `json:"without_cache_s"`
	Speedup   float64 `json:"speedup"`
	Skipped   bool    `json:"without_skipped,omitempty"`
	SkipCause string  `json:"skip_reason,omitempty"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	modelPath := fs.String("model", "", "checkpoint `file` to measure (default: a synthetic checkpoint of --preset)")
	presetName := fs.String("preset", "llama2c-110m", "preset shape of the synthetic checkpoint, written once into --cache-dir")
	cacheDir := fs.String("cache-dir", filepath.Join(os.TempDir(), "kvmesh-bench"), "`dir` for synthetic checkpoints")
	threads := fs.Int("threads", 0, "kernel threads (0: one per core)")
	dtype := fs.String("kv-dtype", "fp32", "KV cache storage")
	decodeTokens := fs.Int("decode-tokens", 64, "tokens decoded per rate measurement")
	prefillTokens := fs.Int("prefill-tokens", 512, "prompt length of the prefill measurement")
	batches := fs.String("batches", "1,4,16,32", "concurrent sequences of the batched decode measurement")
	lengths := fs.String("cache-lengths", "128,256,512", "generation lengths of the with/without KV cache comparison")
	noCacheMax := fs.Int("no-cache-max", 512, "longest generation also run without the cache (the cost grows with its square)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	batchSizes, err := parseInts(*batches)
	if err != nil {
		return fmt.Errorf("--batches: %w", err)
	}
	genLengths, err := parseInts(*lengths)
	if err != nil {
		return fmt.Errorf("--cache-lengths: %w", err)
	}

	path := *modelPath
	if path == "" {
		if path, err = synthCached(ctx, *presetName, *cacheDir, stderr); err != nil {
			return err
		}
	}
	maxBatch := 1
	for _, b := range batchSizes {
		maxBatch = max(maxBatch, b)
	}
	ck, err := ckpt.Open(path)
	if err != nil {
		return err
	}
	seqLen := ck.Config.SeqLen
	ck.Close()
	longest := *prefillTokens
	for _, l := range genLengths {
		longest = max(longest, l)
	}
	const blockSize = 16
	perBatchSeq := (*decodeTokens + 1 + blockSize - 1) / blockSize
	g, err := openGenerator(genConfig{
		model: path, dtype: *dtype, blockSize: blockSize, threads: *threads,
		maxTokens: max(*prefillTokens, maxBatch, 64),
		blocks:    max(min(longest, seqLen)/blockSize+1, maxBatch*perBatchSeq),
	})
	if err != nil {
		return err
	}
	defer g.close()
	cfg := g.model.Config
	rep := benchReport{
		Model:   filepath.Base(path),
		Params:  preset.Shape{Dim: cfg.Dim, HiddenDim: cfg.HiddenDim, Layers: cfg.Layers, Heads: cfg.Heads, KVHeads: cfg.KVHeads, Vocab: cfg.Vocab}.Params(),
		Threads: g.pool.Threads(),
		KVDType: *dtype,
		CPU:     fmt.Sprintf("%s/%s, %d cores", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
	}
	if cfg.SharedClassifier {
		rep.Params -= int64(cfg.Vocab * cfg.Dim)
	}
	fmt.Fprintf(stderr, "bench: %s, %d threads\n", rep.Model, rep.Threads)

	// Prefill: one prompt in one pass.
	n := min(*prefillTokens, seqLen)
	d, err := g.timeBatch(ctx, 1, n, 0)
	if err != nil {
		return err
	}
	rep.Prefill, rep.PrefillTokens = rate(n, d), n

	// Decode, one sequence and batched.
	for _, b := range batchSizes {
		d, err := g.timeBatch(ctx, b, 1, *decodeTokens)
		if err != nil {
			return err
		}
		agg := rate(b**decodeTokens, d)
		if b == 1 {
			rep.DecodeOne = agg
		}
		rep.Batched = append(rep.Batched, batchedRate{Sequences: b, Aggregate: agg, PerSeq: agg / float64(b)})
		fmt.Fprintf(stderr, "bench: %d sequences: %.1f tok/s\n", b, agg)
	}
	if rep.DecodeOne == 0 {
		if rep.DecodeOne, err = g.decodeRate(ctx, *decodeTokens); err != nil {
			return err
		}
	}
	for i := range rep.Batched {
		rep.Batched[i].VsOne = rep.Batched[i].Aggregate / rep.DecodeOne
	}

	// Generation time with and without the cache.
	for _, l := range genLengths {
		l = min(l, seqLen)
		c := cacheComparison{Tokens: l}
		g.noCache = false
		d, err := g.timeGenerate(ctx, l)
		if err != nil {
			return err
		}
		c.WithS = d.Seconds()
		if l > *noCacheMax {
			c.Skipped, c.SkipCause = true, fmt.Sprintf("longer than --no-cache-max %d", *noCacheMax)
		} else {
			g.noCache = true
			d, err := g.timeGenerate(ctx, l)
			g.noCache = false
			if err != nil {
				return err
			}
			c.WithoutS = d.Seconds()
			c.Speedup = c.WithoutS / c.WithS
		}
		rep.CacheVsNoCache = append(rep.CacheVsNoCache, c)
		fmt.Fprintf(stderr, "bench: %d tokens: %.2fs with the cache, %.2fs without\n", l, c.WithS, c.WithoutS)
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(stdout, rep)
	return nil
}

func printBench(w io.Writer, rep benchReport) {
	fmt.Fprintf(w, "model %s (%.1fM parameters), %d threads, KV %s, %s\n\n", rep.Model, float64(rep.Params)/1e6, rep.Threads, rep.KVDType, rep.CPU)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "measurement\ttok/s\tratio\t\n")
	fmt.Fprintf(tw, "decode, 1 sequence\t%.1f\t1.00\t\n", rep.DecodeOne)
	fmt.Fprintf(tw, "prefill, %d tokens in one pass\t%.1f\t%.2f\t\n", rep.PrefillTokens, rep.Prefill, rep.Prefill/rep.DecodeOne)
	for _, b := range rep.Batched {
		fmt.Fprintf(tw, "decode, %d sequences (aggregate)\t%.1f\t%.2f\t\n", b.Sequences, b.Aggregate, b.VsOne)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "generate N tokens\twith KV cache\twithout\tspeedup\t\n")
	for _, c := range rep.CacheVsNoCache {
		if c.Skipped {
			fmt.Fprintf(tw, "%d\t%.2fs\t(skipped)\t\t\n", c.Tokens, c.WithS)
			continue
		}
		fmt.Fprintf(tw, "%d\t%.2fs\t%.2fs\t%.1fx\t\n", c.Tokens, c.WithS, c.WithoutS, c.Speedup)
	}
	tw.Flush()
}

// timeBatch prefills b sequences with prompt tokens each (not timed when steps > 0), then
// decodes steps tokens in every sequence together; it returns the time of the measured
// part: the decode steps, or the prefill when steps is 0.
func (g *generator) timeBatch(ctx context.Context, b, prompt, steps int) (time.Duration, error) {
	tables := make([]*blocks.Table, b)
	batch := make([]model.Seq, b)
	toks := make([]int, b*prompt)
	for i := range toks {
		toks[i] = (i*7 + 3) % g.model.Config.Vocab
	}
	defer func() {
		for _, t := range tables {
			if t != nil {
				g.cache.Release(t)
			}
		}
	}()
	for i := range batch {
		tables[i] = &blocks.Table{}
		batch[i] = model.Seq{Table: tables[i], Tokens: toks[i*prompt : (i+1)*prompt]}
	}
	forward := func() ([]float32, error) {
		for _, s := range batch {
			if !g.cache.Append(s.Table, len(s.Tokens)) {
				return nil, fmt.Errorf("bench: out of KV blocks")
			}
		}
		return g.runner.Forward(batch, g.cache)
	}
	start := time.Now()
	logits, err := forward()
	if err != nil || steps == 0 {
		return time.Since(start), err
	}
	vocab := g.model.Config.Vocab
	next := make([]int, b)
	start = time.Now()
	for range steps {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		for i := range batch {
			next[i] = sample.Argmax(logits[i*vocab : (i+1)*vocab])
			batch[i].Tokens = next[i : i+1]
		}
		if logits, err = forward(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func (g *generator) decodeRate(ctx context.Context, steps int) (float64, error) {
	d, err := g.timeBatch(ctx, 1, 1, steps)
	return rate(steps, d), err
}

// timeGenerate times a greedy generation of n positions from a BOS prompt, without
// stopping at BOS.
func (g *generator) timeGenerate(ctx context.Context, n int) (time.Duration, error) {
	table := &blocks.Table{}
	defer g.cache.Release(table)
	seq := make([]int, 1, n)
	seq[0] = bosID
	start := time.Now()
	feed := seq
	for len(seq) < n {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		logits, err := g.step(table, seq, feed)
		if err != nil {
			return 0, err
		}
		seq = append(seq, sample.Argmax(logits))
		feed = seq[len(seq)-1:]
	}
	return time.Since(start), nil
}

// synthCached returns the path of a synthetic checkpoint of the named preset, writing it
// first if the cache directory does not hold it yet.
func synthCached(ctx context.Context, name, dir string, log io.Writer) (string, error) {
	shape, err := preset.Lookup(name)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, shape.Name+"-shared.bin")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "bench: writing synthetic %s checkpoint to %s\n", shape.Name, path)
	return path, runSynth(ctx, []string{"--preset", shape.Name, "--out", path, "--shared"}, io.Discard, log)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, v)
	}
	return out, nil
}
