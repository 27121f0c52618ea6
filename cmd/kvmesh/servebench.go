package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kvmesh/kvmesh/benchmarks/serving"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
)

func init() {
	register("servebench", "measure the serving engine against its baselines: KV waste, throughput, TTFT, swap", runServebench)
}

// servebenchTargets are the benchmarks --only chooses from, in the order they run.
var servebenchTargets = []string{"waste", "static", "ttft", "swap"}

// serveReport is what kvmesh servebench measures. A benchmark not run is absent.
type serveReport struct {
	Date      string        `json:"date"`
	CPU       string        `json:"cpu"`
	Threads   int           `json:"threads"`
	Repeat    int           `json:"repeat"`
	Quick     bool          `json:"quick"`
	LoadStart string        `json:"load_average_start,omitempty"`
	LoadEnd   string        `json:"load_average_end,omitempty"`
	Waste     *wasteEntry   `json:"waste,omitempty"`
	Static    []staticEntry `json:"static,omitempty"`
	TTFT      *ttftEntry    `json:"ttft,omitempty"`
	Swap      *swapEntry    `json:"swap,omitempty"`
	Seconds   float64       `json:"seconds"`
}

type wasteEntry struct {
	Model string `json:"model"`
	serving.WasteResult
}

type staticEntry struct {
	Model string `json:"model"`
	serving.StaticResult
}

type ttftEntry struct {
	Model string `json:"model"`
	serving.TTFTResult
}

type swapEntry struct {
	Model string `json:"model"`
	serving.SwapResult
}

func runServebench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("servebench", stderr)
	only := fs.String("only", strings.Join(servebenchTargets, ","), "comma-separated `benchmarks` to run: "+strings.Join(servebenchTargets, ", "))
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quick := fs.Bool("quick", false, "small workloads, all on --model (well under a minute; figures are not comparable with a full run)")
	modelPath := fs.String("model", "models/stories260K.bin", "small checkpoint `file`: waste and static (and everything with --quick)")
	staticPreset := fs.String("static-preset", "llama2c-42m", "synthetic preset of a second static-batching run, with stop tokens (empty: none)")
	staticBatch := fs.Int("static-batch", 0, "KV budget of the static-batching comparison, in max-length reservations (the static batch size; 0: 3, or 8 with --quick)")
	bigPreset := fs.String("big-preset", "llama2c-42m", "synthetic preset with a context of at least 1024 for ttft and swap")
	cacheDir := fs.String("cache-dir", filepath.Join(os.TempDir(), "kvmesh-bench"), "`dir` for synthetic checkpoints (shared with kvmesh bench)")
	threads := fs.Int("threads", 0, "kernel threads (0: one per core)")
	blockSize := fs.Int("block-size", 16, "tokens per KV block of every engine and baseline")
	repeat := fs.Int("repeat", 0, "runs of each side of static and swap, alternating; the fastest counts (0: 2, or 1 with --quick)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *blockSize < 1 {
		fmt.Fprintf(stderr, "kvmesh servebench: --block-size %d: must be positive\n", *blockSize)
		return errUsage
	}
	if *repeat <= 0 {
		*repeat = 2
		if *quick {
			*repeat = 1
		}
	}
	if *staticBatch <= 0 {
		// Three reservations: a budget where KV memory, not compute, bounds the engine's
		// batch on two cores (docs/benchmarks-serving.md says why). --quick's short mix
		// needs 8 to hold one context.
		*staticBatch = 3
		if *quick {
			*staticBatch = 8
		}
	}
	want := map[string]bool{}
	for _, name := range strings.Split(*only, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(servebenchTargets, name) {
			fmt.Fprintf(stderr, "kvmesh servebench: unknown benchmark %q (%s)\n", name, strings.Join(servebenchTargets, ", "))
			return errUsage
		}
		want[name] = true
	}

	start := time.Now()
	rep := serveReport{
		Date:      start.UTC().Format(time.RFC3339),
		CPU:       fmt.Sprintf("%s/%s, %d cores", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Threads:   *threads,
		Quick:     *quick,
		Repeat:    *repeat,
		LoadStart: loadAverage(),
	}
	if rep.Threads == 0 {
		rep.Threads = runtime.NumCPU()
	}
	models := &modelSet{}
	defer models.close()
	small := func() (*model.Model, string, error) { return models.open(*modelPath) }
	synth := func(preset string) (*model.Model, string, error) {
		path, err := synthCached(ctx, preset, *cacheDir, stderr)
		if err != nil {
			return nil, "", err
		}
		return models.open(path)
	}
	big := func() (*model.Model, string, error) {
		if *quick {
			return small()
		}
		return synth(*bigPreset)
	}

	if want["waste"] {
		m, name, err := small()
		if err != nil {
			return err
		}
		cfg := serving.WasteConfig{Threads: *threads, BlockSize: *blockSize}
		if *quick {
			cfg.Mix = quickMix()
		}
		fmt.Fprintf(stderr, "servebench: waste on %s\n", name)
		res, err := serving.Waste(ctx, m, cfg)
		if err != nil {
			return err
		}
		rep.Waste = &wasteEntry{Model: name, WasteResult: res}
	}
	if want["static"] {
		type run struct {
			open func() (*model.Model, string, error)
			mix  func(seqLen int) serving.Mix // nil: serving.Mix's defaults
		}
		runs := []run{{open: small}}
		if *quick {
			runs[0].mix = func(int) serving.Mix { return quickMix() }
		} else if *staticPreset != "" {
			runs = append(runs, run{open: func() (*model.Model, string, error) { return synth(*staticPreset) }, mix: stopMix})
		}
		for _, r := range runs {
			m, name, err := r.open()
			if err != nil {
				return err
			}
			var mix serving.Mix
			if r.mix != nil {
				mix = r.mix(m.Config.SeqLen)
			}
			fmt.Fprintf(stderr, "servebench: static batching against the engine on %s\n", name)
			res, err := serving.Static(ctx, m, serving.StaticConfig{Mix: mix, Batch: *staticBatch, Threads: *threads, Repeat: *repeat, BlockSize: *blockSize})
			if err != nil {
				return err
			}
			rep.Static = append(rep.Static, staticEntry{Model: name, StaticResult: res})
		}
	}
	if want["ttft"] {
		m, name, err := big()
		if err != nil {
			return err
		}
		cfg := serving.TTFTConfig{Threads: *threads, BlockSize: *blockSize}
		if *quick {
			cfg.PrefixTokens, cfg.Requests = 128, 4
		}
		fmt.Fprintf(stderr, "servebench: time to first token on %s\n", name)
		res, err := serving.TTFT(ctx, m, cfg)
		if err != nil {
			return err
		}
		rep.TTFT = &ttftEntry{Model: name, TTFTResult: res}
	}
	if want["swap"] {
		m, name, err := big()
		if err != nil {
			return err
		}
		cfg := serving.SwapConfig{Threads: *threads, Repeat: *repeat, BlockSize: *blockSize}
		if *quick {
			cfg.Groups, cfg.PrefixTokens, cfg.PerVisit, cfg.Rounds, cfg.MaxTokens = 4, 256, 2, 2, 8
		}
		fmt.Fprintf(stderr, "servebench: swap tier on %s\n", name)
		res, err := serving.Swap(ctx, m, cfg)
		if err != nil {
			return err
		}
		rep.Swap = &swapEntry{Model: name, SwapResult: res}
	}
	rep.LoadEnd = loadAverage()
	rep.Seconds = time.Since(start).Seconds()

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printServebench(stdout, rep)
	return nil
}

// stopMix is the static-batching workload of a synthetic checkpoint of context seqLen:
// 128 requests, prompts of 16..64 tokens, max_tokens 512 (or the rest of a shorter
// context). A synthetic model's next-token distribution is nearly flat, so nucleus
// sampling over its whole vocabulary would cost more than the forward pass: it samples
// with top-p off. It never emits BOS either, so every request gets stop tokens that end
// its output after 8..128 tokens on average (geometrically distributed): outputs end well
// before the cap, as a trained model's do (stories260K's end at BOS), and that is what
// maximum-length reservation pays for.
func stopMix(seqLen int) serving.Mix {
	maxTokens := min(512, seqLen-64)
	return serving.Mix{Requests: 128, PromptMin: 16, PromptMax: 64, MaxTokensMin: maxTokens, MaxTokensMax: maxTokens,
		TopP: 1, StopMeanMin: 8, StopMeanMax: 128}
}

// quickMix is the small workload of --quick.
func quickMix() serving.Mix {
	return serving.Mix{Requests: 24, PromptMin: 16, PromptMax: 96, MaxTokensMin: 8, MaxTokensMax: 64}
}

// loadAverage is the first three fields of /proc/loadavg, or "" where there is none.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// modelSet opens each checkpoint once and closes them all at the end.
type modelSet struct {
	cks    []*ckpt.Checkpoint
	byPath map[string]*model.Model
}

func (s *modelSet) open(path string) (*model.Model, string, error) {
	name := filepath.Base(path)
	if m, ok := s.byPath[path]; ok {
		return m, name, nil
	}
	ck, err := ckpt.Open(path)
	if err != nil {
		return nil, "", err
	}
	m, err := model.New(ck)
	if err != nil {
		ck.Close()
		return nil, "", err
	}
	if s.byPath == nil {
		s.byPath = map[string]*model.Model{}
	}
	s.cks = append(s.cks, ck)
	s.byPath[path] = m
	return m, name, nil
}

func (s *modelSet) close() {
	for _, ck := range s.cks {
		ck.Close()
	}
}

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "BELOW"
}

func printServebench(w io.Writer, rep serveReport) {
	fmt.Fprintf(w, "kvmesh servebench %s, %s, %d threads, fastest of %d runs, load average %s at start, %s at end", rep.Date, rep.CPU, rep.Threads, rep.Repeat, rep.LoadStart, rep.LoadEnd)
	if rep.Quick {
		fmt.Fprint(w, " (--quick: small workloads, not the targets' conditions)")
	}
	fmt.Fprintln(w)
	table := func(title string, rows func(tw *tabwriter.Writer)) {
		fmt.Fprintf(w, "\n%s\n", title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		rows(tw)
		tw.Flush()
	}
	if r := rep.Waste; r != nil {
		table(fmt.Sprintf("1. KV memory waste, time-averaged (%s, %d requests, block size %d, %.1f running on average, %.0f tokens each; %.1f%% of the run sampled)",
			r.Model, r.Requests, r.BlockSize, r.MeanRunning, r.MeanHeldTokens, 100*r.Coverage), func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "measurement\tpaged (engine)\tcontiguous (baseline)\tcontiguous/paged\ttarget\tverdict\t\n")
			fmt.Fprintf(tw, "reserved but unused slots\t%.2f%%\t%.2f%%\t%.1fx\tpaged < %.0f%%\t%s\t\n",
				100*r.PagedWaste, 100*r.ContiguousWaste, r.Ratio, 100*r.Target, verdict(r.Pass))
		})
	}
	for _, r := range rep.Static {
		table(fmt.Sprintf("2. throughput against static batching (%s, %d requests, %d KV blocks = %d max-length reservations; outputs differing: %d)",
			r.Model, r.Requests, r.Blocks, r.Batch, r.OutputsDiffer), func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "measurement\tengine\tstatic (baseline)\tengine/static\ttarget\tverdict\t\n")
			fmt.Fprintf(tw, "requests/s\t%.2f\t%.2f\t%.2fx\t>= %.0fx\t%s\t\n", r.Engine.RequestsS, r.Static.RequestsS, r.Ratio, r.Target, verdict(r.Pass))
			fmt.Fprintf(tw, "generated tokens/s\t%.1f\t%.1f\t%.2fx\t\t\t\n", r.Engine.TokensS, r.Static.TokensS, r.TokensRatio)
			fmt.Fprintf(tw, "requests per CPU-second\t%.2f\t%.2f\t%.2fx\t\t\t\n", r.Engine.RequestsCPU, r.Static.RequestsCPU, r.CPURatio)
			fmt.Fprintf(tw, "sequences per step\t%.1f\t%.1f\t\t\t\t\n", r.EngineBatch, r.StaticBatch)
			fmt.Fprintf(tw, "output tokens (both): mean, max\t%.1f, %d\t\t\t\t\t\n", r.OutputMean, r.OutputMax)
			fmt.Fprintf(tw, "ended before max_tokens (both)\t%d of %d\t\t\t\t\t\n", r.Stopped, r.Requests)
			fmt.Fprintf(tw, "preemptions\t%d\t\t\t\t\t\n", r.Preemptions)
			fmt.Fprintf(tw, "seconds (fastest of %d)\t%.2f\t%.2f\t\t\t\t\n", len(r.EngineSeconds), r.Engine.Seconds, r.Static.Seconds)
		})
	}
	if r := rep.TTFT; r != nil {
		table(fmt.Sprintf("3. time to first token, %d-token shared prefix + %d-token suffix (%s, %d requests measured; prefix hit rate %.1f%%)",
			r.PrefixTokens, r.SuffixTokens, r.Model, r.Measured, 100*r.HitRate), func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "measurement\tprefix caching\twithout (baseline)\twith/without\ttarget\tverdict\t\n")
			fmt.Fprintf(tw, "median TTFT\t%.1f ms\t%.1f ms\t%.3f\t<= %.1f\t%s\t\n", r.Cached.MedianMS, r.Uncached.MedianMS, r.Ratio, r.Target, verdict(r.Pass))
			fmt.Fprintf(tw, "mean TTFT\t%.1f ms\t%.1f ms\t\t\t\t\n", r.Cached.MeanMS, r.Uncached.MeanMS)
		})
	}
	if r := rep.Swap; r != nil {
		table(fmt.Sprintf("4. throughput with the disk tier (%s, %d groups of %d-token prefixes revisited round-robin; working set %d blocks)",
			r.Model, r.Groups, r.PrefixTokens, r.WorkingSetBlocks), func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "run\tKV blocks\trequests/s\ttokens/s\tvs full memory\trequests/CPU-s\tswapped out\tswapped in\tprefix hits\ttarget\tverdict\t\n")
			row := func(s serving.SwapRun, ratio float64, target string) {
				name := s.Name
				if s.SwapHigh > 0 {
					name = fmt.Sprintf("%s (%.2g/%.2g)", name, s.SwapHigh, s.SwapLow)
				}
				fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.1f\t%.2fx\t%.2f\t%s\t%s\t%.1f%%\t%s\t\n", name, s.Blocks, s.Rate.RequestsS, s.Rate.TokensS, ratio,
					s.Rate.RequestsCPU, byteSize(s.SwapOutBytes), byteSize(s.SwapInBytes), 100*s.PrefixHitRate, target)
			}
			row(r.Full, 1, "\t")
			row(r.Tier, r.Ratio, fmt.Sprintf(">= %.1fx\t%s", r.Target, verdict(r.Pass)))
			row(r.Recompute, r.RecomputeRatio, "\t")
			row(r.Eager, r.EagerRatio, "\t")
		})
	}
	fmt.Fprintf(w, "\n%.1f s in all\n", rep.Seconds)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
