package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/preset"
)

func TestSynth(t *testing.T) {
	for _, tc := range []struct {
		preset  string
		args    []string
		version int
		shared  bool
	}{
		{"llama2c-15m", nil, 0, false},
		{"stories260k", []string{"--version", "2", "--shared", "--seed", "9"}, 2, true},
		{"stories260k", []string{"--version", "1"}, 1, false},
	} {
		t.Run(tc.preset+strings.Join(tc.args, ""), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "model.bin")
			var stdout, stderr bytes.Buffer
			args := append([]string{"--preset", tc.preset, "--out", out}, tc.args...)
			if err := runSynth(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("runSynth: %v\n%s", err, stderr.String())
			}
			ck, err := ckpt.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			shape, _ := preset.Lookup(tc.preset)
			c := ck.Config
			if c.Dim != shape.Dim || c.HiddenDim != shape.HiddenDim || c.Layers != shape.Layers || c.Heads != shape.Heads ||
				c.KVHeads != shape.KVHeads || c.Vocab != shape.Vocab || c.SeqLen != shape.SeqLen ||
				c.Version != tc.version || c.SharedClassifier != tc.shared {
				t.Errorf("wrote %s, want the shape of %+v, version %d, shared %t", c, shape, tc.version, tc.shared)
			}
			if !strings.Contains(stdout.String(), "wrote "+out) {
				t.Errorf("stdout %q does not report the file", stdout.String())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("%d files left in the directory, want only the checkpoint", len(entries))
			}
		})
	}
}

func TestSynthErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "model.bin")
	var stdout, stderr bytes.Buffer
	if err := runSynth(context.Background(), []string{"--preset", "gpt-5", "--out", out}, &stdout, &stderr); !errors.Is(err, preset.ErrUnknown) {
		t.Errorf("unknown preset: %v", err)
	}
	if err := runSynth(context.Background(), []string{"--out", out}, &stdout, &stderr); !errors.Is(err, errUsage) {
		t.Errorf("missing --preset: %v", err)
	}
	if err := runSynth(context.Background(), []string{"--preset", "stories260k", "--out", out, "--version", "3"}, &stdout, &stderr); !errors.Is(err, ckpt.ErrFormat) {
		t.Errorf("version 3: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := runSynth(ctx, []string{"--preset", "stories260k", "--out", out}, &stdout, &stderr); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed runs left %d files behind", len(entries))
	}
}
