package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kvmesh/kvmesh/loadgen"
)

func init() {
	register("loadgen", "send generation load to a server and report TTFT, TPOT, ITL, latency and throughput", runLoadgen)
}

// loadgenOptions is what the loadgen flags say besides the loadgen.Config.
type loadgenOptions struct {
	json     bool   // print the report as JSON instead of a table
	records  bool   // include the per-request records in the JSON
	plots    string // directory for the PNG plots, "" for none
	jsonFile string // also write the JSON report (with records) to this file
	baseline string // a JSON report to compare this run with, "" for none
}

// parseLoadgen turns the loadgen flags into a config and options.
func parseLoadgen(args []string, stderr io.Writer) (loadgen.Config, loadgenOptions, error) {
	cfg := loadgen.DefaultConfig()
	var opt loadgenOptions
	fs := newFlagSet("loadgen", stderr)
	fs.StringVar(&cfg.URL, "url", "", "base `URL` of the server, e.g. http://127.0.0.1:8080 (required)")
	fs.StringVar(&cfg.Model, "model", cfg.Model, "model name sent with each request")
	fs.Float64Var(&cfg.Rate, "rate", 0, "Poisson arrival rate in requests/s (0: closed loop with --concurrency workers)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "closed loop: requests in flight (0 means 1); with --rate: cap on requests in flight (0: none)")
	fs.IntVar(&cfg.Requests, "requests", cfg.Requests, "number of requests to send")
	fs.IntVar(&cfg.Warmup, "warmup", 0, "requests sent one at a time before the measured ones, not reported (e.g. to fill a prefix cache)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "start no request after this long")
	kind := fs.String("prompts", string(loadgen.PromptsRandom), "prompt set: random or shared-prefix")
	fs.IntVar(&cfg.Prompts.MinWords, "min-words", 0, "shortest random prompt or shared-prefix suffix in words (default 8, or 4 for suffixes)")
	fs.IntVar(&cfg.Prompts.MaxWords, "max-words", 0, "longest random prompt or shared-prefix suffix in words (default 64, or 16 for suffixes)")
	fs.IntVar(&cfg.Prompts.Groups, "groups", 0, "shared-prefix: number of prefixes (default 4)")
	fs.IntVar(&cfg.Prompts.PrefixWords, "prefix-words", 0, "shared-prefix: prefix length in words (default 96)")
	fs.IntVar(&cfg.MaxTokens, "max-tokens", cfg.MaxTokens, "max_tokens of each request")
	fs.IntVar(&cfg.MinTokens, "min-tokens", 0, "if > 0, draw each request's max_tokens from min-tokens..max-tokens")
	fs.Float64Var(&cfg.Temperature, "temperature", 0, "sampling temperature (0: greedy)")
	fs.BoolVar(&cfg.IgnoreEOS, "ignore-eos", false, "ask the server to generate max_tokens tokens regardless of end of text")
	noStream := fs.Bool("no-stream", false, "ask for whole responses instead of event streams (measures E2E only)")
	noUsage := fs.Bool("no-usage", false, "do not ask for usage in streams (tokens are counted as chunks)")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of prompts and arrivals; request i samples with seed+i")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on one request, retries included")
	fs.BoolVar(&cfg.RetryRejected, "retry-429", false, "retry requests answered 429 after their Retry-After")
	fs.IntVar(&cfg.MaxRetries, "max-retries", cfg.MaxRetries, "most 429 retries of one request with --retry-429")
	fs.BoolVar(&opt.json, "json", false, "print the report as JSON")
	fs.BoolVar(&opt.records, "records", false, "with --json: include every request's record")
	fs.StringVar(&opt.jsonFile, "json-out", "", "also write the JSON report with records to this `file`")
	fs.StringVar(&opt.baseline, "baseline", "", "compare with the JSON report in this `file` (to stderr with --json)")
	fs.StringVar(&opt.plots, "plots", "", "write PNG plots (latency CDF, tokens/s) into this `dir`")
	if err := parseFlags(fs, args); err != nil {
		return cfg, opt, err
	}
	if cfg.URL == "" {
		fmt.Fprintln(stderr, "kvmesh loadgen: --url is required")
		fs.Usage()
		return cfg, opt, errUsage
	}
	cfg.Prompts.Kind = loadgen.PromptKind(*kind)
	cfg.Stream, cfg.IncludeUsage = !*noStream, !*noUsage
	return cfg, opt, nil
}

func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, opt, err := parseLoadgen(args, stderr)
	if err != nil {
		return err
	}
	var base *loadgen.Report
	if opt.baseline != "" {
		if base, err = loadgen.ReadReport(opt.baseline); err != nil {
			return err
		}
	}
	rep, err := loadgen.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	// A cancelled run still reports what it measured, then returns the error.
	if opt.json {
		if werr := rep.WriteJSON(stdout, opt.records); werr != nil {
			return werr
		}
	} else if werr := rep.WriteTable(stdout); werr != nil {
		return werr
	}
	if base != nil {
		w := stdout
		if opt.json {
			w = stderr
		} else {
			fmt.Fprintln(w)
		}
		if werr := rep.WriteComparison(w, base); werr != nil {
			return werr
		}
	}
	if opt.jsonFile != "" {
		if werr := writeReportFile(rep, opt.jsonFile); werr != nil {
			return werr
		}
	}
	if opt.plots != "" {
		paths, perr := rep.WritePlots(opt.plots)
		if perr != nil {
			return perr
		}
		for _, p := range paths {
			fmt.Fprintf(stderr, "wrote %s\n", p)
		}
	}
	return err
}

func writeReportFile(rep *loadgen.Report, path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("--json-out: %w", err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--json-out: %w", err)
	}
	if err := rep.WriteJSON(f, true); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
