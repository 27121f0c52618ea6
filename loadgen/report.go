package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: what was asked, each request's Record (in request
// order, only those sent) and their Summary.
type Report struct {
	Run     RunInfo  `json:"run"`
	Summary Summary  `json:"summary"`
	Records []Record `json:"records,omitempty"`
}

// RunInfo echoes the Config of a run, with its defaults filled.
type RunInfo struct {
	URL         string    `json:"url"`
	Model       string    `json:"model"`
	Rate        float64   `json:"rate_rps"` // 0: closed loop
	Concurrency int       `json:"concurrency"`
	Requests    int       `json:"requests"`
	Warmup      int       `json:"warmup,omitempty"`
	Prompts     PromptSet `json:"prompts"`
	MaxTokens   int       `json:"max_tokens"`
	MinTokens   int       `json:"min_tokens,omitempty"`
	Temperature float64   `json:"temperature"`
	Stream      bool      `json:"stream"`
	Seed        int64     `json:"seed"`
}

// Summary is the statistics of a run. Latencies and token counts are over the
// successful requests; Duration spans all requests sent.
type Summary struct {
	Sent      int `json:"sent"`
	NotSent   int `json:"not_sent"` // cut off by Config.Duration or a cancelled context
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Errors counts failed requests by ErrorKind; ErrorExamples holds the message of
	// the first failure of each kind.
	Errors        map[string]int    `json:"errors,omitempty"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`
	// Rejections counts 429 answers, retried or not.
	Rejections int `json:"rejections"`
	// WarmupFailed counts failed warm-up requests (Config.Warmup).
	WarmupFailed int `json:"warmup_failed,omitempty"`
	// Duration is the time from the first send to the last end, in seconds.
	Duration float64 `json:"duration_s"`
	// RequestRate and OutputTokenRate are successful requests and their output tokens
	// per second of Duration; TotalTokenRate adds their prompt tokens.
	RequestRate     float64 `json:"request_throughput_rps"`
	OutputTokenRate float64 `json:"output_throughput_tok_s"`
	TotalTokenRate  float64 `json:"total_token_throughput_tok_s"`
	PromptTokens    int     `json:"prompt_tokens"`
	OutputTokens    int     `json:"output_tokens"`
	// TTFT, TPOT, ITL and E2E are the latency distributions (see Record). SendDelay is
	// Start − Scheduled of every request sent: an open-loop arrival's wait for a free slot
	// under Config.Concurrency plus the client's own lateness in sending it; a large
	// SendDelay without a cap means the load generator itself is short of CPU.
	TTFT      Dist `json:"ttft"`
	TPOT      Dist `json:"tpot"`
	ITL       Dist `json:"itl"`
	E2E       Dist `json:"e2e"`
	SendDelay Dist `json:"send_delay"`
}

func newReport(cfg Config, recs []Record, notSent int) *Report {
	return &Report{
		Run: RunInfo{
			URL: cfg.URL, Model: cfg.Model, Rate: cfg.Rate, Concurrency: cfg.Concurrency,
			Requests: cfg.Requests, Warmup: cfg.Warmup, Prompts: cfg.Prompts,
			MaxTokens: cfg.MaxTokens, MinTokens: cfg.MinTokens,
			Temperature: cfg.Temperature, Stream: cfg.Stream, Seed: cfg.Seed,
		},
		Summary: summarize(recs, notSent),
		Records: recs,
	}
}

// summarize computes the Summary of recs.
func summarize(recs []Record, notSent int) Summary {
	s := Summary{Sent: len(recs), NotSent: notSent}
	var ttft, tpot, itl, e2e, delay []time.Duration
	var first, last time.Duration
	for i := range recs {
		r := &recs[i]
		if i == 0 || r.Start < first {
			first = r.Start
		}
		last = max(last, r.End)
		s.Rejections += r.Rejections
		delay = append(delay, r.Start-r.Scheduled)
		if !r.OK() {
			s.Failed++
			if s.Errors == nil {
				s.Errors, s.ErrorExamples = map[string]int{}, map[string]string{}
			}
			if s.Errors[r.ErrorKind] == 0 {
				s.ErrorExamples[r.ErrorKind] = r.Error
			}
			s.Errors[r.ErrorKind]++
			continue
		}
		s.Succeeded++
		s.PromptTokens += r.PromptTokens
		s.OutputTokens += r.OutputTokens
		e2e = append(e2e, r.E2E())
		if d, ok := r.TTFT(); ok {
			ttft = append(ttft, d)
		}
		if d, ok := r.TPOT(); ok {
			tpot = append(tpot, d)
		}
		itl = r.appendITL(itl)
	}
	if len(recs) > 0 && last > first {
		s.Duration = (last - first).Seconds()
		s.RequestRate = float64(s.Succeeded) / s.Duration
		s.OutputTokenRate = float64(s.OutputTokens) / s.Duration
		s.TotalTokenRate = float64(s.PromptTokens+s.OutputTokens) / s.Duration
	}
	s.TTFT, s.TPOT, s.ITL, s.E2E, s.SendDelay = distOf(ttft), distOf(tpot), distOf(itl), distOf(e2e), distOf(delay)
	return s
}

// WriteJSON writes the report as indented JSON; the per-request records only with
// records set.
func (r *Report) WriteJSON(w io.Writer, records bool) error {
	out := *r
	if !records {
		out.Records = nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&out); err != nil {
		return fmt.Errorf("loadgen: write json: %w", err)
	}
	return nil
}

// WriteTable writes the report as a human-readable table.
func (r *Report) WriteTable(w io.Writer) error {
	s, in := &r.Summary, &r.Run
	mode := fmt.Sprintf("closed loop, %d in flight", max(in.Concurrency, 1))
	if in.Rate > 0 {
		mode = fmt.Sprintf("Poisson arrivals at %g req/s", in.Rate)
		if in.Concurrency > 0 {
			mode += fmt.Sprintf(", at most %d in flight", in.Concurrency)
		}
	}
	prompts := fmt.Sprintf("%s prompts of %d-%d words", in.Prompts.Kind, in.Prompts.MinWords, in.Prompts.MaxWords)
	if in.Prompts.Kind == PromptsSharedPrefix {
		prompts = fmt.Sprintf("%d shared prefixes of %d words + %d-%d words", in.Prompts.Groups,
			in.Prompts.PrefixWords, in.Prompts.MinWords, in.Prompts.MaxWords)
	}
	stream := "streaming"
	if !in.Stream {
		stream = "not streaming"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "target     %s (model %q)\n", in.URL, in.Model)
	budget := fmt.Sprintf("max %d tokens", in.MaxTokens)
	if in.MinTokens > 0 {
		budget = fmt.Sprintf("max %d-%d tokens", in.MinTokens, in.MaxTokens)
	}
	fmt.Fprintf(&b, "load       %d requests, %s; %s; %s, %s\n", in.Requests, mode, prompts, budget, stream)
	fmt.Fprintf(&b, "requests   %d sent, %d ok, %d failed, %d not sent, %d rejections (429)",
		s.Sent, s.Succeeded, s.Failed, s.NotSent, s.Rejections)
	if in.Warmup > 0 {
		fmt.Fprintf(&b, "; after %d warm-up requests (%d failed)", in.Warmup, s.WarmupFailed)
	}
	b.WriteByte('\n')
	if len(s.Errors) > 0 {
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, s.Errors[k]))
		}
		fmt.Fprintf(&b, "errors     %s\n", strings.Join(kinds, ", "))
		for _, k := range slices.Sorted(maps.Keys(s.ErrorExamples)) {
			fmt.Fprintf(&b, "  first %s: %s\n", k, s.ErrorExamples[k])
		}
	}
	fmt.Fprintf(&b, "duration   %.3f s\n", s.Duration)
	fmt.Fprintf(&b, "throughput %.2f req/s, %.1f output tok/s, %.1f total tok/s (%d output, %d prompt tokens)\n\n",
		s.RequestRate, s.OutputTokenRate, s.TotalTokenRate, s.OutputTokens, s.PromptTokens)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("loadgen: write table: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency (ms)\tn\tmean\tp50\tp90\tp99\tmax\t")
	for _, row := range []struct {
		name string
		d    Dist
	}{{"TTFT", s.TTFT}, {"TPOT", s.TPOT}, {"ITL", s.ITL}, {"E2E", s.E2E}, {"send delay", s.SendDelay}} {
		d := row.d
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", row.name, d.N, d.Mean, d.P50, d.P90, d.P99, d.Max)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("loadgen: write table: %w", err)
	}
	return nil
}

// Timeline counts the streamed tokens of all requests in bins of width bin from the start
// of the run, as tokens per second: rate[i] covers [i·bin, (i+1)·bin). It panics if
// bin ≤ 0.
func (r *Report) Timeline(bin time.Duration) (rate []float64) {
	if bin <= 0 {
		panic("loadgen: Timeline bin ≤ 0")
	}
	for i := range r.Records {
		for _, t := range r.Records[i].TokenTimes {
			k := int(t / bin)
			for len(rate) <= k {
				rate = append(rate, 0)
			}
			rate[k]++
		}
	}
	for k := range rate {
		rate[k] /= bin.Seconds()
	}
	return rate
}
