package shard

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/internal/testcert"
)

// TestStageTLS: a pipeline over mutual TLS serves the reference; a leader without a
// client certificate, or without TLS, cannot open a session.
func TestStageTLS(t *testing.T) {
	m := loadModel(t)
	dir := t.TempDir()
	ca := testcert.New(t, dir, "kvmesh")
	cert, key := ca.Issue(t, "node")
	mtls := TLS{CertFile: cert, KeyFile: key, CAFile: ca.CAFile}
	last := startStageWith(t, StageServerConfig{Model: m, Range: Range{3, 5}, TLS: mtls}, "127.0.0.1:0")
	mid := startStageWith(t, StageServerConfig{Model: m, Range: Range{2, 3}, TLS: mtls}, "127.0.0.1:0")
	dial := func(tls TLS) (*StageClient, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return DialPipeline(ctx, PipelineConfig{Stages: []string{mid.addr, last.addr}, Model: m.Identity(), FirstLayer: 2,
			BlockSize: 16, NumBlocks: 64, KVDType: blocks.FP32, TLS: tls, HelloTimeout: 500 * time.Millisecond, Logger: quiet})
	}
	for _, tt := range []struct {
		name string
		tls  TLS
	}{
		{"no client certificate", TLS{CAFile: mtls.CAFile}},
		{"plaintext", TLS{}},
	} {
		if c, err := dial(tt.tls); !errors.Is(err, ErrStageBroken) {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s: got %v, want ErrStageBroken", tt.name, err)
		}
	}
	c, err := dial(mtls)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, err := engine.New(m, engine.Config{BlockSize: 16, NumBlocks: 64, LeaderLayers: 2, Downstream: c, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	submitAll(t, e, referenceCases(t)[:3])
}
