package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/kvmesh/kvmesh/benchmarks/serving"
)

func init() {
	register("pipebench", "measure a two-stage pipeline on loopback against the single-process engine", runPipebench)
}

func runPipebench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pipebench", stderr)
	modelPath := fs.String("model", "", "checkpoint `file` (default: the synthetic --preset)")
	preset := fs.String("preset", "llama2c-15m", "synthetic preset when --model is empty")
	cacheDir := fs.String("cache-dir", filepath.Join(os.TempDir(), "kvmesh-bench"), "`dir` for synthetic checkpoints (shared with kvmesh bench)")
	seqs := fs.Int("seqs", 16, "concurrent sequences")
	tokens := fs.Int("tokens", 64, "tokens each sequence generates")
	threads := fs.Int("threads", 2, "thread budget: the single engine's, split between leader and stage")
	mbs := fs.String("micro-batches", "1,2", "comma-separated micro-batch counts of the pipeline runs")
	repeat := fs.Int("repeat", 3, "runs of each side, alternating; the fastest counts")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var micro []int
	for _, f := range strings.Split(*mbs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "kvmesh pipebench: --micro-batches %q: want positive integers\n", *mbs)
			return errUsage
		}
		micro = append(micro, n)
	}
	path := *modelPath
	if path == "" {
		var err error
		if path, err = synthCached(ctx, *preset, *cacheDir, stderr); err != nil {
			return err
		}
	}
	models := &modelSet{}
	defer models.close()
	m, name, err := models.open(path)
	if err != nil {
		return err
	}
	res, err := serving.Pipeline(ctx, m, serving.PipelineConfig{Seqs: *seqs, Tokens: *tokens, Threads: *threads, MicroBatches: micro, Repeat: *repeat})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Model string `json:"model"`
			serving.PipelineResult
			Load string `json:"load_average"`
		}{name, res, loadAverage()})
	}
	fmt.Fprintf(stdout, "%s: %d sequences x %d tokens, %d threads (pipeline: leader layers [0,%d) on %d, stage on %d), load average %s\n",
		name, res.Seqs, *tokens, res.Threads, res.Split, res.Threads/2, res.Threads-res.Threads/2, loadAverage())
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tmicro-batches\ttokens\tseconds\ttok/s\tratio\t")
	for _, r := range res.Runs {
		mb := "-"
		if r.MicroBatches > 0 {
			mb = strconv.Itoa(r.MicroBatches)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.1f\t%.2fx\t\n", r.Name, mb, r.Tokens, r.Seconds, r.TokPerSec, r.Ratio)
	}
	return tw.Flush()
}
