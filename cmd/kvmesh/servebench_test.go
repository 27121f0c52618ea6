package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestServebenchQuick runs every benchmark's quick workload and checks the report's shape
// and that its figures are positive; whether the targets are met depends on the machine's
// load and is not checked.
func TestServebenchQuick(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"--quick", "--json", "--model", "../../models/stories260K.bin", "--cache-dir", t.TempDir()}
	if err := runServebench(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("servebench: %v\n%s", err, stderr.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	positive := []string{
		"seconds",
		"waste.paged_waste", "waste.contiguous_waste", "waste.ratio", "waste.coverage",
		"static.0.engine.requests_per_s", "static.0.static.requests_per_s", "static.0.ratio", "static.0.engine.tokens_per_s",
		"ttft.cached.median_ms", "ttft.uncached.median_ms", "ttft.ratio", "ttft.prefix_hit_rate",
		"swap.full_memory.rate.requests_per_s", "swap.quarter_memory_disk_tier.rate.requests_per_s",
		"swap.quarter_memory_recompute.rate.requests_per_s", "swap.quarter_memory_eager_tier.rate.requests_per_s",
		"swap.ratio", "swap.recompute_ratio", "swap.working_set_blocks",
	}
	for _, path := range positive {
		v, err := lookup(rep, path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if f, ok := v.(float64); !ok || !(f > 0) {
			t.Errorf("%s = %v, want a positive number", path, v)
		}
	}
	for _, path := range []string{"waste.pass", "static.0.pass", "ttft.pass", "swap.pass"} {
		if v, err := lookup(rep, path); err != nil {
			t.Errorf("%s: %v", path, err)
		} else if _, ok := v.(bool); !ok {
			t.Errorf("%s = %v, want a boolean", path, v)
		}
	}
	if v, _ := lookup(rep, "quick"); v != true {
		t.Errorf("quick = %v", v)
	}
}

// lookup follows a dotted path of object keys and array indexes.
func lookup(v any, path string) (any, error) {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, errors.New("missing key " + k)
			}
		case []any:
			if k != "0" || len(x) == 0 {
				return nil, errors.New("missing index " + k)
			}
			v = x[0]
		default:
			return nil, errors.New("not an object at " + k)
		}
	}
	return v, nil
}

func TestServebenchFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"--only", "waste,bogus"}, "bogus"},
		{[]string{"--block-size", "0"}, "--block-size 0"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runServebench(context.Background(), tc.args, &stdout, &stderr)
			if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("err %v, stderr %q; want a usage error mentioning %q", err, stderr.String(), tc.want)
			}
		})
	}
}

func TestServebenchTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"--quick", "--only", "ttft", "--model", "../../models/stories260K.bin"}
	if err := runServebench(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("servebench: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"time to first token", "median TTFT", "target"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "PASS") && !strings.Contains(out, "BELOW") {
		t.Errorf("table has no verdict:\n%s", out)
	}
	if strings.Contains(out, "KV memory waste") {
		t.Errorf("--only ttft printed the waste table:\n%s", out)
	}
}
