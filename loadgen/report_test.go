package loadgen

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// syntheticReport builds a report from made-up records: n streamed requests that start
// 10 ms apart, the i-th with i%7+2 tokens 3 ms apart after a TTFT of 5+i ms, and one
// failed request.
func syntheticReport(n int) *Report {
	var recs []Record
	for i := range n {
		start := time.Duration(i) * 10 * time.Millisecond
		r := Record{Index: i, Group: -1, Scheduled: start, Start: start, FirstByte: start + time.Millisecond, Status: 200}
		t := start + time.Duration(5+i)*time.Millisecond
		for range i%7 + 2 {
			r.TokenTimes = append(r.TokenTimes, t)
			t += 3 * time.Millisecond
		}
		r.End = t
		r.OutputTokens = len(r.TokenTimes)
		r.PromptTokens = 10
		recs = append(recs, r)
	}
	bad := Record{Index: n, Group: -1, Start: time.Millisecond, Status: 500}
	bad.fail(ErrStatus, 2*time.Millisecond)
	recs = append(recs, bad)
	cfg := DefaultConfig()
	cfg.URL = "http://127.0.0.1:1"
	cfg.Requests = n + 1
	return newReport(cfg, recs, 0)
}

func TestSummaryOfSyntheticRecords(t *testing.T) {
	rep := syntheticReport(20)
	s := rep.Summary
	checkSummary(t, rep)
	if s.Failed != 1 || s.Errors[KindStatus] != 1 || s.TTFT.N != 20 || s.TPOT.N != 20 {
		t.Fatalf("summary %+v", s)
	}
	// Every TPOT is exactly 3 ms; TTFTs are 5..24 ms, so p50 = 14.5 ms.
	if s.TPOT.P50 != 3 || s.TPOT.Max != 3 || s.TTFT.P50 != 14.5 || s.TTFT.Max != 24 || s.ITL.Max != 3 {
		t.Fatalf("latencies %+v %+v %+v", s.TTFT, s.TPOT, s.ITL)
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	rep := syntheticReport(20)
	var tab bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TTFT", "TPOT", "ITL", "E2E", "p99", "status 1", "req/s", "output tok/s"} {
		if !strings.Contains(tab.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, tab.String())
		}
	}
	for _, records := range []bool{false, true} {
		var js bytes.Buffer
		if err := rep.WriteJSON(&js, records); err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(js.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if back.Summary.TTFT != rep.Summary.TTFT || back.Summary.OutputTokens != rep.Summary.OutputTokens ||
			back.Run.URL != rep.Run.URL || (len(back.Records) > 0) != records {
			t.Fatalf("JSON round trip (records %v): %s", records, js.String())
		}
		if records && back.Records[3].TokenTimes[1] != rep.Records[3].TokenTimes[1] {
			t.Fatal("records differ after a JSON round trip")
		}
	}
}

func TestTimeline(t *testing.T) {
	rep := syntheticReport(20)
	rate := rep.Timeline(100 * time.Millisecond)
	var total float64
	for _, v := range rate {
		total += v * 0.1
	}
	if int(total+0.5) != rep.Summary.OutputTokens {
		t.Fatalf("timeline counts %v tokens, summary %d", total, rep.Summary.OutputTokens)
	}
}

func TestTimelineBin(t *testing.T) {
	for _, tt := range []struct{ end, want time.Duration }{
		{0, 10 * time.Millisecond},
		{600 * time.Millisecond, 10 * time.Millisecond},
		{601 * time.Millisecond, 20 * time.Millisecond},
		{3 * time.Second, 50 * time.Millisecond},
		{3100 * time.Millisecond, 100 * time.Millisecond},
		{10 * time.Minute, 10 * time.Second},
	} {
		r := Report{Records: []Record{{End: tt.end}}}
		if got := r.timelineBin(); got != tt.want {
			t.Errorf("run of %v: bin %v, want %v", tt.end, got, tt.want)
		}
	}
}

func TestWritePlots(t *testing.T) {
	for _, n := range []int{20, 1, 0} {
		dir := filepath.Join(t.TempDir(), "plots")
		paths, err := syntheticReport(n).WritePlots(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 2 || filepath.Base(paths[0]) != LatencyCDFFile || filepath.Base(paths[1]) != TimelineFile {
			t.Fatalf("paths %v", paths)
		}
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			// 8 × 5 inches at 96 dpi.
			if b := img.Bounds(); b.Dx() != 768 || b.Dy() != 480 {
				t.Fatalf("%s: %v, want 768×480", p, b)
			}
		}
	}
}
