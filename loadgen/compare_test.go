package loadgen

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	base := syntheticReport(20)
	this := syntheticReport(20)
	this.Summary.TTFT.P50 = base.Summary.TTFT.P50 / 4
	this.Summary.RequestRate = base.Summary.RequestRate * 2
	this.Summary.ITL = Dist{}
	path := filepath.Join(t.TempDir(), "base.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := base.WriteJSON(f, false); err != nil {
		t.Fatal(err)
	}
	f.Close()
	read, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Ratio{}
	for _, q := range this.Compare(read) {
		got[q.Name] = q
	}
	if q := got["TTFT p50 (ms)"]; math.Abs(q.Ratio-0.25) > 1e-12 || q.Base != base.Summary.TTFT.P50 {
		t.Fatalf("TTFT p50: %+v", q)
	}
	if q := got["request throughput (req/s)"]; math.Abs(q.Ratio-2) > 1e-12 {
		t.Fatalf("request throughput: %+v", q)
	}
	if q := got["E2E p99 (ms)"]; q.Ratio != 1 {
		t.Fatalf("E2E p99: %+v", q)
	}
	zero := &Report{}
	for _, q := range this.Compare(zero) {
		if !math.IsNaN(q.Ratio) {
			t.Fatalf("ratio against a zero baseline: %+v", q)
		}
	}
	var b bytes.Buffer
	if err := this.WriteComparison(&b, read); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "TTFT p50 (ms)") || !strings.Contains(b.String(), "0.250×") {
		t.Fatalf("comparison table:\n%s", b.String())
	}
	if _, err := ReadReport(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("ReadReport of a missing file succeeded")
	}
}
