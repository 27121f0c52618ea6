package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kvmesh/kvmesh/internal/reftest"
)

func loadRefOutputs(t *testing.T) []reftest.Case { return reftest.All(t) }

// TestGenerateMatchesRunC checks that kvmesh generate prints exactly what llama2.c's run
// printed for every reference case, with and without the KV cache and across storage
// settings that keep fp32 exactness.
func TestGenerateMatchesRunC(t *testing.T) {
	cases := loadRefOutputs(t)
	variants := [][]string{
		nil,
		{"--block-size", "1"},
		{"--block-size", "64"},
	}
	for _, c := range cases {
		for _, v := range variants {
			args := []string{
				"--model", "../../models/stories260K.bin", "--tokenizer", "../../models/tok512.bin",
				"--prompt", c.Prompt, "--steps", fmt.Sprint(c.Steps),
				"--temperature", fmt.Sprint(c.Temperature), "--top-p", fmt.Sprint(c.TopP),
				"--seed", fmt.Sprint(max(c.Seed, 1)),
			}
			args = append(args, v...)
			var stdout, stderr bytes.Buffer
			if err := runGenerate(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("%q %v: %v\n%s", c.Prompt, v, err, stderr.String())
			}
			if got := strings.TrimSuffix(stdout.String(), "\n"); got != c.Stdout {
				t.Errorf("prompt %q %v:\n got %q\nwant %q", c.Prompt, v, got, c.Stdout)
			}
		}
	}
}

// TestGenerateWithoutCache checks the cache-less baseline on a short generation: it
// recomputes every step yet prints the same text.
func TestGenerateWithoutCache(t *testing.T) {
	c := loadRefOutputs(t)[0]
	run := func(extra ...string) string {
		args := append([]string{
			"--model", "../../models/stories260K.bin", "--tokenizer", "../../models/tok512.bin",
			"--prompt", c.Prompt, "--steps", "64", "--temperature", "0",
		}, extra...)
		var stdout, stderr bytes.Buffer
		if err := runGenerate(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v", extra, err)
		}
		return stdout.String()
	}
	with, without := run(), run("--no-kv-cache")
	if with != without {
		t.Errorf("without the KV cache:\n%q\nwith it:\n%q", without, with)
	}
	if !strings.HasPrefix(c.Stdout, strings.TrimSuffix(with, "\n")) {
		t.Errorf("64 steps %q are not a prefix of the reference %q", with, c.Stdout)
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	long := strings.Repeat("Once upon a time ", 200)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown dtype", []string{"--kv-dtype", "fp8"}, "fp8"},
		{"prompt past context", []string{"--prompt", long}, "context"},
		{"missing model", []string{"--model", "nope.bin"}, "nope.bin"},
		{"tokenizer of another model", []string{"--tokenizer", "../../models/tokenizer.bin"}, "vocab"},
		{"bad temperature", []string{"--temperature", "-1"}, "temperature"},
		{"zero block size", []string{"--block-size", "0"}, "block size"},
	}
	for _, tt := range tests {
		args := append([]string{"--model", "../../models/stories260K.bin", "--tokenizer", "../../models/tok512.bin"}, tt.args...)
		var stdout, stderr bytes.Buffer
		err := runGenerate(context.Background(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}
