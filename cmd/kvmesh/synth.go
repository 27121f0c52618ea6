package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/preset"
)

func init() {
	register("synth", "write a synthetic checkpoint of a real model's shape", runSynth)
}

// runSynth writes a checkpoint with pseudo-random weights (ckpt.WriteSynthetic) in the
// shape of a preset. It writes a temporary file beside --out and renames it at the end, so
// a file with the final name is always complete.
func runSynth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("synth", stderr)
	name := fs.String("preset", "", "model `shape` to copy: "+strings.Join(preset.Names(), ", "))
	out := fs.String("out", "", "checkpoint `file` to write")
	seed := fs.Uint64("seed", 1, "seed of the pseudo-random weights")
	version := fs.Int("version", 0, "file format: 0 legacy fp32, 1 ak42 fp32, 2 ak42 int8 (Q8_0)")
	shared := fs.Bool("shared", false, "tie the classifier to the token embedding (llama2.c's own models do)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *out == "" {
		fmt.Fprintln(stderr, "kvmesh synth: --preset and --out are required")
		fs.Usage()
		return errUsage
	}
	shape, err := preset.Lookup(*name)
	if err != nil {
		return err
	}
	cfg := ckpt.Config{
		Dim: shape.Dim, HiddenDim: shape.HiddenDim, Layers: shape.Layers, Heads: shape.Heads,
		KVHeads: shape.KVHeads, Vocab: shape.Vocab, SeqLen: shape.SeqLen,
		SharedClassifier: *shared, Version: *version,
	}.WithDefaults()
	size, err := cfg.FileSize()
	if err != nil {
		return fmt.Errorf("preset %s: %w", shape.Name, err)
	}
	start := time.Now()
	if err := writeAtomically(ctx, *out, func(w io.Writer) error {
		return ckpt.WriteSynthetic(w, cfg, *seed)
	}); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "wrote %s: %s (%s), %d params, %d bytes in %.1fs (%.0f MB/s)\n",
		*out, shape.Name, cfg, cfg.Params(), size, took.Seconds(), float64(size)/took.Seconds()/1e6)
	return nil
}

// writeAtomically writes path through a temporary file in the same directory, renamed to
// path only once write and a sync have succeeded; on failure or cancellation of ctx the
// temporary file is removed.
func writeAtomically(ctx context.Context, path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(ctxWriter{ctx, f}); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ctxWriter fails writes once its context is done, so a long write stops on Ctrl-C.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, fmt.Errorf("interrupted: %w", context.Cause(c.ctx))
	}
	return c.w.Write(p)
}
