package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/loadgen"
)

func TestLoadgenFlags(t *testing.T) {
	tests := []struct {
		args  []string
		usage bool
		check func(loadgen.Config, loadgenOptions) bool
	}{
		{args: nil, usage: true},
		{args: []string{"--url", "http://x:1", "stray"}, usage: true},
		{args: []string{"--url", "http://x:1", "--rate", "fast"}, usage: true},
		{args: []string{"--url", "http://x:1"}, check: func(c loadgen.Config, o loadgenOptions) bool {
			return c.Stream && c.IncludeUsage && c.Rate == 0 && c.Requests == 100 && !o.json && o.plots == ""
		}},
		{args: []string{"--url", "http://x:1", "--rate", "2.5", "--concurrency", "8", "--requests", "7",
			"--prompts", "shared-prefix", "--groups", "3", "--prefix-words", "50", "--min-words", "2", "--max-words", "5",
			"--max-tokens", "9", "--temperature", "0.8", "--seed", "11", "--no-stream", "--retry-429",
			"--json", "--records", "--plots", "d", "--baseline", "b.json", "--duration", "3s", "--timeout", "4s", "--warmup", "2", "--min-tokens", "3"},
			check: func(c loadgen.Config, o loadgenOptions) bool {
				p := c.Prompts
				return c.Rate == 2.5 && c.Concurrency == 8 && c.Requests == 7 && p.Kind == loadgen.PromptsSharedPrefix &&
					p.Groups == 3 && p.PrefixWords == 50 && p.MinWords == 2 && p.MaxWords == 5 && c.MaxTokens == 9 &&
					c.Temperature == 0.8 && c.Seed == 11 && !c.Stream && c.RetryRejected && o.json && o.records &&
					o.plots == "d" && c.Duration == 3*time.Second && c.Timeout == 4*time.Second && c.Warmup == 2 && c.MinTokens == 3 && o.baseline == "b.json"
			}},
	}
	for _, tt := range tests {
		cfg, opt, err := parseLoadgen(tt.args, io.Discard)
		if tt.usage {
			if !errors.Is(err, errUsage) {
				t.Errorf("%q: got %v, want a usage error", tt.args, err)
			}
			continue
		}
		if err != nil || !tt.check(cfg, opt) {
			t.Errorf("%q: err %v, config %+v, options %+v", tt.args, err, cfg, opt)
		}
	}
	var stderr bytes.Buffer
	if err := runLoadgen(context.Background(), []string{"--url", "http://127.0.0.1:1", "--prompts", "poems"}, io.Discard, &stderr); !errors.Is(err, loadgen.ErrConfig) {
		t.Fatalf("unknown prompt set: %v", err)
	}
}

// startServe runs `kvmesh serve` on a free loopback port with the shipped model and
// returns its URL; the server stops when the test ends.
func startServe(t *testing.T, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	args := append([]string{"--model", "../../models/stories260K.bin", "--tokenizer", "../../models/tok512.bin",
		"--addr", "127.0.0.1:0", "--drain", "5s"}, extra...)
	go func() {
		err := runServe(ctx, args, pw, io.Discard)
		pw.CloseWithError(err)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop within 10 s")
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case url, ok := <-lines:
		if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
			t.Fatalf("serve printed %q, want its URL", url)
		}
		return url
	case <-time.After(30 * time.Second):
		t.Fatal("serve printed no URL within 30 s")
	}
	return ""
}

// TestLoadgenAgainstServe runs short loads against the real server, through both commands.
func TestLoadgenAgainstServe(t *testing.T) {
	url := startServe(t)
	for _, tt := range []struct {
		name  string
		args  []string
		table bool // print the table and write the JSON to a file
	}{
		{"closed loop, random prompts", []string{"--concurrency", "4", "--min-tokens", "1"}, false},
		{"Poisson, shared prefixes", []string{"--rate", "50", "--prompts", "shared-prefix", "--groups", "2",
			"--prefix-words", "60", "--temperature", "0.9", "--warmup", "2"}, false},
		{"not streaming", []string{"--concurrency", "2", "--no-stream"}, false},
		{"table and JSON file", []string{"--concurrency", "3"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			plots := t.TempDir()
			args := append([]string{"--url", url, "--requests", "20", "--max-tokens", "24", "--seed", "3",
				"--timeout", "60s", "--plots", plots}, tt.args...)
			jsonFile := filepath.Join(plots, "sub", "report.json")
			if tt.table {
				args = append(args, "--json-out", jsonFile)
			} else {
				args = append(args, "--json", "--records")
			}
			var stdout, stderr bytes.Buffer
			if err := runLoadgen(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("loadgen: %v\n%s", err, stderr.String())
			}
			js := stdout.Bytes()
			if tt.table {
				for _, want := range []string{"20 sent, 20 ok", "TTFT", "E2E", "req/s"} {
					if !strings.Contains(stdout.String(), want) {
						t.Fatalf("table lacks %q:\n%s", want, stdout.String())
					}
				}
				var err error
				if js, err = os.ReadFile(jsonFile); err != nil {
					t.Fatal(err)
				}
			}
			var rep loadgen.Report
			if err := json.Unmarshal(js, &rep); err != nil {
				t.Fatalf("report: %v\n%s", err, js)
			}
			if tt.table { // a second, shorter run compared with the first
				stdout.Reset()
				again := []string{"--url", url, "--requests", "5", "--max-tokens", "8", "--baseline", jsonFile}
				if err := runLoadgen(context.Background(), again, &stdout, &stderr); err != nil {
					t.Fatalf("loadgen --baseline: %v\n%s", err, stderr.String())
				}
				if !strings.Contains(stdout.String(), "vs baseline") || !strings.Contains(stdout.String(), "TTFT p50 (ms)") {
					t.Fatalf("no comparison in:\n%s", stdout.String())
				}
			}
			checkLoadReport(t, &rep, !strings.Contains(tt.name, "not streaming"))
			for _, f := range []string{loadgen.LatencyCDFFile, loadgen.TimelineFile} {
				fh, err := os.Open(filepath.Join(plots, f))
				if err != nil {
					t.Fatal(err)
				}
				_, err = png.Decode(fh)
				fh.Close()
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
			}
		})
	}
}

// checkLoadReport asserts that every request succeeded and that the summary agrees with
// the records.
func checkLoadReport(t *testing.T, rep *loadgen.Report, stream bool) {
	t.Helper()
	s := rep.Summary
	if s.Sent != 20 || s.Succeeded != 20 || s.Failed != 0 || s.NotSent != 0 || len(rep.Records) != 20 {
		t.Fatalf("summary %+v, errors %v", s, s.ErrorExamples)
	}
	var out, prompt, itl, withTokens int
	for i, r := range rep.Records {
		if !r.OK() || r.Index != i || r.Status != 200 || r.PromptTokens == 0 || r.OutputTokens > r.MaxTokens || r.MaxTokens < 1 || r.MaxTokens > 24 {
			t.Fatalf("record %d: %+v", i, r)
		}
		if r.End < r.Start || r.FinishReason == "" {
			t.Fatalf("record %d: %+v", i, r)
		}
		if stream && len(r.TokenTimes) > 0 {
			withTokens++
			if r.TokenTimes[0] < r.Start || r.TokenTimes[len(r.TokenTimes)-1] > r.End {
				t.Fatalf("record %d: token times outside [start, end]: %+v", i, r)
			}
		}
		out += r.OutputTokens
		prompt += r.PromptTokens
		itl += max(len(r.TokenTimes)-1, 0)
	}
	if s.OutputTokens != out || s.PromptTokens != prompt || s.ITL.N != itl || s.TTFT.N != withTokens || s.E2E.N != 20 {
		t.Fatalf("summary %+v disagrees with its records (out %d prompt %d itl %d ttft %d)", s, out, prompt, itl, withTokens)
	}
	if stream && (withTokens < 15 || s.TPOT.N == 0) {
		t.Fatalf("only %d of 20 streamed requests produced tokens: %+v", withTokens, s)
	}
	for name, d := range map[string]loadgen.Dist{"TTFT": s.TTFT, "TPOT": s.TPOT, "ITL": s.ITL, "E2E": s.E2E} {
		if !(d.P50 <= d.P90 && d.P90 <= d.P99 && d.P99 <= d.Max && d.Mean <= d.Max) {
			t.Fatalf("%s out of order: %+v", name, d)
		}
	}
	if s.TTFT.N > 0 && (s.TTFT.Max > s.E2E.Max || s.TTFT.P50 > s.E2E.P50) {
		t.Fatalf("TTFT %+v beyond E2E %+v", s.TTFT, s.E2E)
	}
	if s.Duration <= 0 || s.RequestRate <= 0 || s.RequestRate*s.Duration < 19.99 || s.OutputTokenRate*s.Duration < float64(out)-0.5 {
		t.Fatalf("throughput %+v", s)
	}
}
