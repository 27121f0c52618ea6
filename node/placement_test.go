package node

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/cluster"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/internal/testmodel"
	"github.com/kvmesh/kvmesh/shard"
)

// testNode is a Node of stories260K with cfg, as far as placement needs one: no
// membership, no servers.
func testNode(t *testing.T, cfg Config) *Node {
	return &Node{cfg: cfg, model: testmodel.Load(t)}
}

// TestOfferedMemory: the memory a worker gossips, from --memory or its default
// (--kv-memory plus the weights it may hold), and the KV room placement keeps.
func TestOfferedMemory(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		mib, kvT int
	}{
		// stories260K: 1,040,128 bytes of weights; 256 bytes of KV per token and layer.
		{"default: 64 MiB of KV and the whole model", Config{}, 65, 512},
		{"default with a range: its weights only", Config{Range: "3:5", Engine: engineKV(8 << 20)}, 9, 512},
		{"small KV memory: fewer tokens than a full context", Config{Engine: engineKV(256 << 10)}, 2, 204},
		{"explicit, whole MiB", Config{Memory: 3 << 20}, 3, 512},
		{"explicit, rounded up", Config{Memory: 3<<20 + 1}, 4, 512},
	} {
		n := testNode(t, tc.cfg)
		mib, err := n.offeredMiB()
		if err != nil || mib != tc.mib {
			t.Errorf("%s: offered %d MiB, %v; want %d", tc.name, mib, err, tc.mib)
		}
		if got := n.minKVTokens(); got != tc.kvT {
			t.Errorf("%s: KV room for %d tokens, want %d", tc.name, got, tc.kvT)
		}
	}
	if _, err := testNode(t, Config{Memory: -1}).offeredMiB(); err == nil {
		t.Error("negative memory accepted")
	}
}

// TestPlacementByGossipedMemory: the memory other workers gossip (cluster.Meta.Memory,
// MiB) decides where a worker goes. stories260K with the KV of a full context (512
// tokens) needs 1.62 MiB for all 5 layers: a 1 MiB worker holds 2 layers with the
// embedding, or 3 at the end, and a 2 MiB one the whole model.
func TestPlacementByGossipedMemory(t *testing.T) {
	placed := func(id, layers, pipe string, mib int) cluster.Meta {
		r, err := shard.ParseRange(layers)
		if err != nil {
			t.Fatal(err)
		}
		return cluster.Meta{ID: id, Role: cluster.RoleWorker, First: r.First, Last: r.Last, Pipeline: pipe,
			State: cluster.StateReady, Memory: mib, Incarnation: 1}
	}
	waiting := func(id string, mib int) cluster.Meta {
		return cluster.Meta{ID: id, Role: cluster.RoleWorker, State: cluster.StateLoading, Memory: mib, Incarnation: 2}
	}
	router := cluster.Meta{ID: "router-1", Role: cluster.RoleRouter, State: cluster.StateReady}
	for _, tc := range []struct {
		name     string
		view     []cluster.Meta
		mib      int    // this worker's memory
		layers   string // its --layers, "" for none
		want     string // "first:last pipeline"
		wantErr  error
		wantPipe string
	}{
		{name: "alone, 1 MiB: the first 2 layers, the rest left for others", view: []cluster.Meta{router}, mib: 1, want: "0:2", wantPipe: "p0"},
		{name: "alone, 2 MiB: the whole model", view: []cluster.Meta{router}, mib: 2, want: "0:5", wantPipe: "p0"},
		{name: "1 MiB fills the 3 layers a 1 MiB leader left", view: []cluster.Meta{router, placed("worker-3", "0:2", "p0", 1)},
			mib: 1, want: "2:5", wantPipe: "p0"},
		{name: "beside a waiting 2 MiB worker, which takes a whole pipeline, 1 MiB starts the next",
			view: []cluster.Meta{waiting("worker-2", 2)}, mib: 1, want: "0:2", wantPipe: "p1"},
		{name: "beside a waiting 1 MiB worker, the two split one pipeline 2 and 3",
			view: []cluster.Meta{waiting("worker-2", 1)}, mib: 1, want: "0:2", wantPipe: "p0"},
		{name: "a waiting worker that gossips no memory (an older node) is left to place itself",
			view: []cluster.Meta{waiting("worker-0", 0)}, mib: 2, want: "0:5", wantPipe: "p0"},
		{name: "a gap goes to the larger of two waiting workers, the smaller starts a pipeline",
			view: []cluster.Meta{placed("worker-3", "0:2", "p0", 1), waiting("worker-2", 2)}, mib: 1, want: "0:2", wantPipe: "p1"},
		{name: "explicit range that fits", view: []cluster.Meta{placed("worker-3", "0:2", "p0", 1)}, mib: 1, layers: "2:5",
			want: "2:5", wantPipe: "p0"},
		{name: "explicit range too large for the memory offered", mib: 1, layers: "0:5", wantErr: shard.ErrNoFit},
		{name: "explicit range overlapping a live worker", view: []cluster.Meta{placed("worker-3", "0:3", "p0", 65)}, mib: 65,
			layers: "2:4", wantErr: shard.ErrOverlap},
	} {
		n := testNode(t, Config{ID: "worker-1", Range: tc.layers, Pipeline: "p0", Memory: int64(tc.mib) << 20})
		n.memMiB = tc.mib
		r, pipe, err := n.assign(tc.view)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: %v %s, %v; want %v", tc.name, r, pipe, err, tc.wantErr)
			}
			continue
		}
		if err != nil || r.String() != tc.want || pipe != tc.wantPipe {
			t.Errorf("%s: %v %s, %v; want %s %s", tc.name, r, pipe, err, tc.want, tc.wantPipe)
		}
	}
}

func engineKV(b int64) engine.Config { return engine.Config{KVMemory: b} }

// TestStageMemoryCheck: a leader logs, once per stage incarnation, a stage whose gossiped
// memory cannot hold its layers' weights and the mirror of the leader's KV blocks.
func TestStageMemoryCheck(t *testing.T) {
	var logs strings.Builder
	n := testNode(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// 5461 blocks of 16 tokens: 64 MiB of fp32 KV over the leader's 2 layers. Stage 2:5
	// mirrors them over 3 layers: 64.0 MiB of KV and 0.5 MiB of weights.
	n.down = &downstream{geometry: shard.PipelineConfig{BlockSize: 16, NumBlocks: 5461, KVDType: blocks.FP32}}
	stage := func(mib int, inc uint64) cluster.Meta {
		return cluster.Meta{ID: "worker-2", Role: cluster.RoleWorker, First: 2, Last: 5, Memory: mib, Incarnation: inc}
	}
	for _, tc := range []struct {
		name  string
		dtype blocks.DType
		m     cluster.Meta
		warns int // warnings so far
	}{
		{"enough", blocks.FP32, stage(65, 1), 0},
		{"short", blocks.FP32, stage(64, 1), 1},
		{"short again: logged once", blocks.FP32, stage(64, 1), 1},
		{"restarted, still short", blocks.FP32, stage(64, 2), 2},
		{"unknown memory (an older node)", blocks.FP32, stage(0, 3), 2},
		{"int8 KV takes 24.0 MiB", blocks.Int8, stage(25, 4), 2},
		{"int8, short", blocks.Int8, stage(24, 5), 3},
	} {
		n.down.geometry.KVDType = tc.dtype
		n.checkStageMemory(tc.m)
		if got := strings.Count(logs.String(), "level=WARN"); got != tc.warns {
			t.Errorf("%s: %d warnings, want %d:\n%s", tc.name, got, tc.warns, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "stage=worker-2 layers=2:5 memory_mib=64 need_mib=65") {
		t.Errorf("the warning does not name the stage and the figures:\n%s", logs.String())
	}
}
