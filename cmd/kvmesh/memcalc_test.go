package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/model/preset"
)

const gib = 1 << 30

func mustShape(t *testing.T, name string) kvShape {
	t.Helper()
	p, err := preset.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return shapeOf(p)
}

func TestMemcalcBytes(t *testing.T) {
	tests := []struct {
		preset        string
		dtype         string
		tokens, batch int64
		data, scales  int64
	}{
		{"llama-7b", "fp16", 4096, 1, 2 * gib, 0},
		{"llama-7b", "fp16", 4096, 32, 64 * gib, 0},
		{"llama-7b", "fp32", 4096, 1, 4 * gib, 0},
		// int8: half of fp16, plus 2 × 32 layers × 32 heads × 4096 tokens × 4 bytes of scales.
		{"llama-7b", "int8", 4096, 1, 1 * gib, 32 << 20},
		{"llama-7b", "int4", 4096, 1, gib / 2, 32 << 20},
		{"llama-7b", "fp16", 1, 1, 512 << 10, 0},
		// GQA: 8 KV heads of 64, so 80 layers cost 1.25 GiB, an eighth of MHA's 10 GiB.
		{"llama-70b", "fp16", 4096, 1, 1280 << 20, 0},
		{"llama3-8b", "fp16", 8192, 1, 1 * gib, 0},
		{"tinyllama-1.1b", "fp16", 2048, 1, 44 << 20, 0},
		{"stories260k", "fp32", 512, 1, 2 * 5 * 4 * 8 * 512 * 4, 0},
		// int4 of an odd token count is still whole bytes: the K/V factor 2 pairs the nibbles.
		{"stories260k", "int4", 1, 1, 2 * 5 * 4 * 8 / 2, 2 * 5 * 4 * 4},
	}
	for _, tt := range tests {
		d, err := lookupDtype(tt.dtype)
		if err != nil {
			t.Fatal(err)
		}
		z, err := kvBytes(mustShape(t, tt.preset), d, tt.tokens, tt.batch)
		if err != nil {
			t.Fatal(err)
		}
		if z.Data != tt.data || z.Scales != tt.scales || z.Total != tt.data+tt.scales {
			t.Errorf("%s %s %d×%d: %+v, want data %d scales %d", tt.preset, tt.dtype, tt.tokens, tt.batch, z, tt.data, tt.scales)
		}
	}
}

func TestMemcalcOverflow(t *testing.T) {
	s := kvShape{Layers: 1 << 20, KVHeads: 1 << 20, HeadSize: 1 << 20, Heads: 1 << 20, Context: 1}
	fp32, _ := lookupDtype("fp32")
	if _, err := kvBytes(s, fp32, 1<<20, 1<<10); !errors.Is(err, errTooLarge) {
		t.Errorf("kvBytes of 2^92 bytes: error %v, want errTooLarge", err)
	}
}

func TestMemcalcPaged(t *testing.T) {
	s := mustShape(t, "llama-7b")
	fp16, _ := lookupDtype("fp16")
	tests := []struct {
		tokens, batch, block     int64
		blocks, unused           int64
		paged, contiguousPerSeqT int64
	}{
		{4096, 1, 16, 256, 0, 2 * gib, 4096},
		{1000, 8, 16, 63, 8, 8 * 63 * 16 * (512 << 10), 4096},
		{1, 1, 16, 1, 15, 16 * (512 << 10), 4096},
		{1000, 1, 1, 1000, 0, 1000 * (512 << 10), 4096},
		{5000, 1, 256, 20, 120, 20 * 256 * (512 << 10), 5000}, // longer than the context
	}
	for _, tt := range tests {
		p, err := memcalcPaged(s, fp16, tt.tokens, tt.batch, tt.block)
		if err != nil {
			t.Fatal(err)
		}
		if p.BlocksPerSeq != tt.blocks || p.UnusedPerSeq != tt.unused || p.PagedBytes != tt.paged ||
			p.ContiguousTokens != tt.contiguousPerSeqT || p.ContiguousBytes != tt.batch*tt.contiguousPerSeqT*(512<<10) {
			t.Errorf("%d tokens × %d, block %d: %+v", tt.tokens, tt.batch, tt.block, p)
		}
		if p.UnusedPerSeq >= tt.block {
			t.Errorf("%d tokens, block %d: %d unused slots, want < block size", tt.tokens, tt.block, p.UnusedPerSeq)
		}
	}
}

// TestMemcalcAgreesWithBlocks checks memcalc's arithmetic against the bytes the paged cache
// really allocates per block, for every preset, storage type and a few block sizes.
func TestMemcalcAgreesWithBlocks(t *testing.T) {
	for _, p := range preset.All() {
		s := shapeOf(p)
		for _, d := range kvDtypes {
			bd, err := blocks.ParseDType(d.name)
			if err != nil {
				t.Fatal(err)
			}
			for _, bs := range []int64{1, 16, 32} {
				pg, err := memcalcPaged(s, d, 100, 3, bs)
				if err != nil {
					t.Fatal(err)
				}
				want := blocks.Shape{Layers: p.Layers, KVHeads: p.KVHeads, HeadSize: p.HeadSize(), BlockSize: int(bs)}.BlockBytes(bd)
				if pg.BlockBytes != int64(want) {
					t.Errorf("%s %s block %d: memcalc %d bytes per block, blocks allocates %d", p.Name, d.name, bs, pg.BlockBytes, want)
				}
			}
		}
	}
}

// memcalc runs kvmesh memcalc through the command frame, returning exit code and output.
func memcalc(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"memcalc"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMemcalcLLaMA7B(t *testing.T) {
	code, out, errOut := memcalc("--preset", "llama-7b", "--seq", "4096", "--batch", "1", "--dtype", "fp16", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r memReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Size.Total != 2147483648 || r.GiB != 2 {
		t.Errorf("LLaMA-7B 4096 tokens batch 1 fp16: %d bytes (%v GiB), want 2,147,483,648 (2 GiB)", r.Size.Total, r.GiB)
	}
	found := false
	for _, row := range r.Table {
		for _, c := range row.Bytes {
			if row.Tokens == 4096 && c.Batch == 32 {
				found = true
				if c.Bytes != 64*gib {
					t.Errorf("LLaMA-7B 4096 tokens batch 32: %d bytes, want 64 GiB", c.Bytes)
				}
			}
		}
	}
	if !found {
		t.Error("table has no 4096 tokens × batch 32 cell")
	}
	if len(r.Variants) != 2 || r.Variants[1].Variant != "MQA" || r.Variants[1].Saving != 32 {
		t.Errorf("variants %+v, want MHA (this model) and MQA saving 32×", r.Variants)
	}

	code, out, _ = memcalc("--preset", "LLaMA-7B", "--batch", "32")
	if code != 0 || !strings.Contains(out, "= 68,719,476,736 bytes = 64 GiB") {
		t.Errorf("text for batch 32 lacks the 64 GiB total (exit %d):\n%s", code, out)
	}
}

func TestMemcalcExplicitShape(t *testing.T) {
	// LLaMA-70B's shape given by hand, with the MHA comparison from --heads.
	code, out, errOut := memcalc("--layers", "80", "--heads", "64", "--kv-heads", "8", "--head-size", "128", "--seq", "4096", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r memReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Size.Total != 1280<<20 || r.Attention != "GQA" || len(r.Variants) != 3 || r.Variants[0].Bytes != 10*gib || r.Variants[1].Saving != 8 {
		t.Errorf("explicit LLaMA-70B shape: %+v", r)
	}
	// A preset with one field overridden.
	code, out, _ = memcalc("--preset", "llama-7b", "--kv-heads", "8", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	r = memReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Model.Name != "llama-7b (modified)" || r.Size.Total != gib/2 || r.Variants[0].Bytes != 2*gib {
		t.Errorf("llama-7b with 8 KV heads: %s %d bytes, variants %+v", r.Model.Name, r.Size.Total, r.Variants)
	}
}

func TestMemcalcSummaryJSON(t *testing.T) {
	code, out, errOut := memcalc("--json", "--dtype", "int8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []memSummary
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(preset.All()) {
		t.Fatalf("%d summary rows, want one per preset (%d)", len(rows), len(preset.All()))
	}
	for _, r := range rows {
		if r.Model.Name == "llama-7b" && (r.PerToken != 256<<10+2*32*32*4 || r.Bytes[0].Bytes != gib+32<<20) {
			t.Errorf("llama-7b int8 summary: %+v", r)
		}
	}
}

func TestMemcalcErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // in stderr
		is   error
	}{
		{[]string{"--preset", "gpt-2"}, 1, "unknown preset", preset.ErrUnknown},
		{[]string{"--preset", "llama-7b", "--dtype", "bf16"}, 1, "unknown dtype \"bf16\" (known: fp32, fp16, int8, int4)", errUnknownDtype},
		{[]string{"--dtype", "fp8"}, 1, "unknown dtype", errUnknownDtype},
		{[]string{"--preset", "llama-7b", "--batch", "0"}, 1, "--batch 0", nil},
		{[]string{"--preset", "llama-7b", "--block-size", "0"}, 1, "--block-size 0", nil},
		{[]string{"--preset", "llama-7b", "--seq", "-5"}, 1, "--seq -5", nil},
		{[]string{"--layers", "32", "--kv-heads", "32", "--head-size", "128"}, 1, "needs --seq", nil},
		{[]string{"--layers", "32", "--seq", "100"}, 1, "needs --layers, --kv-heads and --head-size", nil},
		{[]string{"--layers", "2", "--heads", "6", "--kv-heads", "4", "--head-size", "8", "--seq", "9"}, 1, "not a multiple", nil},
		{[]string{"--layers", "1048576", "--kv-heads", "1048576", "--head-size", "1048576", "--seq", "1048576"}, 1, "overflows", errTooLarge},
		{[]string{"--preset", "llama-7b", "extra"}, 2, "unexpected argument", nil},
		{[]string{"--no-such-flag"}, 2, "flag provided but not defined", nil},
	}
	for _, tt := range tests {
		code, _, errOut := memcalc(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("memcalc %q: exit %d, stderr %q; want exit %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
		if tt.is != nil {
			if err := runMemcalc(context.Background(), tt.args, io.Discard, io.Discard); !errors.Is(err, tt.is) {
				t.Errorf("memcalc %q: error %v, want %v", tt.args, err, tt.is)
			}
		}
	}
}

func TestMemcalcHelp(t *testing.T) {
	code, _, errOut := memcalc("-h")
	if code != 0 || !strings.Contains(errOut, "usage: kvmesh memcalc") {
		t.Errorf("memcalc -h: exit %d, stderr %q", code, errOut)
	}
}

// TestMemcalcGolden compares whole outputs with testdata/memcalc_*.golden; regenerate with
// go test ./cmd/kvmesh -run Memcalc -update.
func TestMemcalcGolden(t *testing.T) {
	tests := []struct {
		file string
		args []string
	}{
		{"memcalc_summary.golden", nil},
		{"memcalc_llama-70b_int8.golden", []string{"--preset", "llama-70b", "--seq", "1000", "--batch", "8", "--dtype", "int8"}},
	}
	for _, tt := range tests {
		code, out, errOut := memcalc(tt.args...)
		if code != 0 {
			t.Fatalf("memcalc %q: exit %d: %s", tt.args, code, errOut)
		}
		path := filepath.Join("testdata", tt.file)
		if *update {
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if out != string(want) {
			t.Errorf("memcalc %q differs from %s:\n--- got\n%s\n--- want\n%s", tt.args, path, out, want)
		}
	}
}

func TestCommasAndUnits(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 2147483648: "2,147,483,648", -1234567: "-1,234,567"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{640: "640 B", 1024: "1.0 KiB", 327680: "320.0 KiB", 2 * gib: "2.0 GiB", 1 << 40: "1.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
