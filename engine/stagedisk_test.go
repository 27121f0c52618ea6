package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/kvmesh/kvmesh/blocks"
)

// unreached is a Downstream for configurations that are only validated, never run.
type unreached struct{}

func (unreached) Send(context.Context, *StageStep) error { panic("not run") }
func (unreached) Recv(context.Context) ([]int, error)    { panic("not run") }

// TestPipelineLeaderDiskConfig: a pipeline leader takes a disk tier; swap preemption and
// int8 disk encoding stay single-process.
func TestPipelineLeaderDiskConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // "" accepts
	}{
		{"disk tier", Config{SwapPath: "x.swap"}, ""},
		{"swap preemption", Config{SwapPath: "x.swap", Preemption: Swap}, "preempts by recomputing"},
		{"int8 on disk", Config{SwapPath: "x.swap", SwapInt8: true}, "int8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Downstream, cfg.LeaderLayers = unreached{}, 2
			err := cfg.validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("validate: %v, want %q", err, tt.want)
			}
		})
	}
}

// TestSwapIdentity: a single-process file keeps the identity it always had (files written
// before pipelines had a disk tier stay valid); a layer range makes another.
func TestSwapIdentity(t *testing.T) {
	if got, want := SwapIdentity("abc", blocks.FP16, 16, 0, 0), "abc|kv=fp16|block=16"; got != want {
		t.Errorf("single process: %q, want %q", got, want)
	}
	if got, want := SwapIdentity("abc", blocks.FP32, 16, 2, 5), "abc|kv=fp32|block=16|layers=2:5"; got != want {
		t.Errorf("stage: %q, want %q", got, want)
	}
}
