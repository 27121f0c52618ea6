package loadgen

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// The size of the plots WritePlots draws: 768 × 480 pixels at the PNG canvas's 96 dpi.
const (
	PlotWidth  = 8 * vg.Inch
	PlotHeight = 5 * vg.Inch
)

// The file names WritePlots writes in its directory.
const (
	LatencyCDFFile = "latency_cdf.png"
	TimelineFile   = "throughput.png"
)

// WritePlots draws the report's plots as PNG files in dir (created if missing): the
// latency CDFs of TTFT and E2E (LatencyCDFFile) and output tokens per second over the run
// (TimelineFile). It returns the paths written.
func (r *Report) WritePlots(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("loadgen: plots: %w", err)
	}
	var paths []string
	for _, pl := range []struct {
		file string
		draw func() (*plot.Plot, error)
	}{{LatencyCDFFile, r.LatencyCDFPlot}, {TimelineFile, r.TimelinePlot}} {
		p, err := pl.draw()
		if err != nil {
			return paths, err
		}
		path := filepath.Join(dir, pl.file)
		if err := p.Save(PlotWidth, PlotHeight, path); err != nil {
			return paths, fmt.Errorf("loadgen: save %s: %w", path, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// LatencyCDFPlot draws the empirical distribution functions of the successful requests'
// TTFT and E2E latencies.
func (r *Report) LatencyCDFPlot() (*plot.Plot, error) {
	var ttft, e2e []time.Duration
	for i := range r.Records {
		rec := &r.Records[i]
		if !rec.OK() {
			continue
		}
		e2e = append(e2e, rec.E2E())
		if d, ok := rec.TTFT(); ok {
			ttft = append(ttft, d)
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Latency CDF (%d requests)", len(e2e))
	p.X.Label.Text = "latency (ms)"
	p.Y.Label.Text = "fraction of requests"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	var lines []any
	for _, s := range []struct {
		name string
		xs   []time.Duration
	}{{"TTFT", ttft}, {"E2E", e2e}} {
		if len(s.xs) > 0 {
			lines = append(lines, s.name, cdf(s.xs))
		}
	}
	if len(lines) == 0 {
		p.X.Min, p.X.Max = 0, 1
		return p, nil
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return nil, fmt.Errorf("loadgen: latency plot: %w", err)
	}
	p.X.Min = 0
	p.Legend.Top = false
	p.Legend.Left = false
	return p, nil
}

// cdf returns the points (x_i, i/n) of the empirical distribution of xs in milliseconds,
// as a staircase; it sorts xs.
func cdf(xs []time.Duration) plotter.XYs {
	slices.Sort(xs)
	n := float64(len(xs))
	pts := make(plotter.XYs, 0, 2*len(xs))
	for i, x := range xs {
		pts = append(pts, plotter.XY{X: ms(x), Y: float64(i) / n}, plotter.XY{X: ms(x), Y: float64(i+1) / n})
	}
	return pts
}

// timelineBin picks the bin width of the throughput plot: the smallest of 10 ms, 20 ms,
// 50 ms, 100 ms, ... that makes at most 60 bins over the run.
func (r *Report) timelineBin() time.Duration {
	var end time.Duration
	for i := range r.Records {
		end = max(end, r.Records[i].End)
	}
	for bin := 10 * time.Millisecond; ; bin *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			if end <= 60*m*bin {
				return m * bin
			}
		}
	}
}

// TimelinePlot draws the streamed output tokens per second over the run.
func (r *Report) TimelinePlot() (*plot.Plot, error) {
	bin := r.timelineBin()
	rate := r.Timeline(bin)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Output tokens per second (%v bins)", bin)
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = "tokens / s"
	p.Add(plotter.NewGrid())
	p.X.Min, p.Y.Min = 0, 0
	if len(rate) == 0 {
		p.X.Max, p.Y.Max = 1, 1
		return p, nil
	}
	pts := make(plotter.XYs, 0, 2*len(rate))
	for k, v := range rate { // a step per bin
		x0 := (time.Duration(k) * bin).Seconds()
		pts = append(pts, plotter.XY{X: x0, Y: v}, plotter.XY{X: x0 + bin.Seconds(), Y: v})
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, fmt.Errorf("loadgen: throughput plot: %w", err)
	}
	l.Color = plotutil.Color(0)
	p.Add(l)
	return p, nil
}
