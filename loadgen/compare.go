package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"
)

// ReadReport reads a report written by WriteJSON, e.g. a baseline to compare with.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loadgen: read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("loadgen: read report %s: %w", path, err)
	}
	return &r, nil
}

// Ratio is one compared figure: this run's value, the baseline's, and this/base (NaN when
// the baseline's is 0).
type Ratio struct {
	Name       string
	This, Base float64
	Ratio      float64
}

// Compare lists the throughput and latency figures of r against those of base.
func (r *Report) Compare(base *Report) []Ratio {
	var out []Ratio
	add := func(name string, this, b float64) {
		q := math.NaN()
		if b != 0 {
			q = this / b
		}
		out = append(out, Ratio{Name: name, This: this, Base: b, Ratio: q})
	}
	s, b := &r.Summary, &base.Summary
	add("request throughput (req/s)", s.RequestRate, b.RequestRate)
	add("output throughput (tok/s)", s.OutputTokenRate, b.OutputTokenRate)
	for _, d := range []struct {
		name    string
		this, b Dist
	}{{"TTFT", s.TTFT, b.TTFT}, {"TPOT", s.TPOT, b.TPOT}, {"ITL", s.ITL, b.ITL}, {"E2E", s.E2E, b.E2E}} {
		add(d.name+" mean (ms)", d.this.Mean, d.b.Mean)
		add(d.name+" p50 (ms)", d.this.P50, d.b.P50)
		add(d.name+" p90 (ms)", d.this.P90, d.b.P90)
		add(d.name+" p99 (ms)", d.this.P99, d.b.P99)
	}
	return out
}

// WriteComparison writes Compare(base) as a table.
func (r *Report) WriteComparison(w io.Writer, base *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "vs baseline\tthis\tbaseline\tratio\t")
	for _, q := range r.Compare(base) {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.3f×\t\n", q.Name, q.This, q.Base, q.Ratio)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("loadgen: write comparison: %w", err)
	}
	return nil
}
