package shard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/internal/reftest"
	"github.com/kvmesh/kvmesh/model"
)

// diskSeed is the key seed of the disk pipeline's prefix cache, so that a test can name a
// prompt's block keys.
var diskSeed = blocks.BlockHash{0x5e, 0xed}

// diskPipeline is a leader over two stage servers on loopback, [2, 3) and [3, 5), each
// worker with a disk tier in its own bbolt file in dir, and a KV budget so small that
// every cold cached block goes to disk after each step. Files persist across stop and
// start, as they do across process restarts.
type diskPipeline struct {
	t      *testing.T
	m      *model.Model
	dir    string
	paths  map[Range]string // the stages' swap files
	max    map[Range]int64  // the stages' SwapMaxBytes
	stages map[Range]*stage
	e      *engine.Engine
	client *StageClient
}

var diskRanges = []Range{{2, 3}, {3, 5}}

func newDiskPipeline(t *testing.T) *diskPipeline {
	dir := t.TempDir()
	p := &diskPipeline{t: t, m: loadModel(t), dir: dir, paths: map[Range]string{}, max: map[Range]int64{}}
	for _, r := range diskRanges {
		p.paths[r] = filepath.Join(dir, fmt.Sprintf("stage-%d-%d.swap", r.First, r.Last))
	}
	t.Cleanup(p.stop)
	return p
}

// start starts the stages, then the leader's engine on dir/leader.swap.
func (p *diskPipeline) start() {
	t := p.t
	t.Helper()
	p.stages = map[Range]*stage{}
	for _, r := range diskRanges {
		p.stages[r] = startStageWith(t, StageServerConfig{Model: p.m, Range: r, SwapPath: p.paths[r], SwapMaxBytes: p.max[r]}, "127.0.0.1:0")
	}
	const numBlocks = 64
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	p.client, err = DialPipeline(ctx, PipelineConfig{Stages: []string{p.stages[diskRanges[0]].addr, p.stages[diskRanges[1]].addr},
		Model: p.m.Identity(), FirstLayer: 2, BlockSize: 16, NumBlocks: numBlocks, KVDType: blocks.FP32, MaxTokens: 256,
		Pipeline: "p0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p.e, err = engine.New(p.m, engine.Config{NumBlocks: numBlocks, BlockSize: 16, LeaderLayers: 2, Downstream: p.client,
		SwapPath: filepath.Join(p.dir, "leader.swap"), SwapHigh: 0.05, SwapLow: 0.01, KeySeed: diskSeed, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
}

// stop shuts the leader down, then the stages; their files stay.
func (p *diskPipeline) stop() {
	if p.e != nil {
		if err := p.e.Shutdown(context.Background()); err != nil {
			p.t.Error(err)
		}
		p.client.Close()
		p.e, p.client = nil, nil
	}
	for _, s := range p.stages {
		s.stop()
	}
	p.stages = nil
}

// run submits every case at once and checks each output that completes against the
// reference; it returns how many requests ended with engine.ErrPipeline (any other
// error fails the test).
func (p *diskPipeline) run(cases []refCase) (failed int) {
	t := p.t
	t.Helper()
	chans := make([]<-chan engine.Event, len(cases))
	for i, c := range cases {
		var err error
		if chans[i], err = p.e.Submit(context.Background(), requestOf(c)); err != nil {
			t.Fatal(err)
		}
	}
	for i, ch := range chans {
		var got []int
		var err error
		for ev := range ch {
			switch {
			case ev.Err != nil:
				err = ev.Err
			case ev.Finish == "":
				got = append(got, ev.Token)
			}
		}
		switch {
		case errors.Is(err, engine.ErrPipeline):
			failed++
		case err != nil:
			t.Fatalf("case %d: %v", i, err)
		case fmt.Sprint(got) != fmt.Sprint(cases[i].Tokens()):
			t.Errorf("case %q:\n got %v\nwant %v", cases[i].Prompt, got, cases[i].Tokens())
		}
	}
	return failed
}

// waitStagesHold waits until the idle leader has sent its last moves: every stage holds
// as many blocks on disk as the leader.
func (p *diskPipeline) waitStagesHold() {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		want, ok := p.e.Stats().SwapBlocks, true
		for _, ds := range p.diskStats() {
			ok = ok && ds.Blocks == want
		}
		if ok && want > 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the leader holds %d blocks on disk, the stages %+v", want, p.diskStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// diskStats is the stages' disk counters, in range order.
func (p *diskPipeline) diskStats() []DiskStats {
	var out []DiskStats
	for _, r := range diskRanges {
		out = append(out, p.stages[r].srv.DiskStats())
	}
	return out
}

// longCases are the greedy reference cases with 48 generated tokens moved into the
// prompt: prompts of three full blocks and more, which prefix caching can reuse.
func longCases(t *testing.T) []refCase {
	greedy, _ := reftest.Load(t)
	var out []refCase
	for _, c := range greedy {
		if len(c.GeneratedIDs) > 64 {
			out = append(out, c.Continued(48))
		}
	}
	return out
}

// TestStageDiskMatchesReference: with a KV budget that sends every cold block to disk,
// the leader and both stages write their layers' blocks to their own files, and the
// second round of the same prompts loads its prefixes from all three files; every output
// equals the reference.
func TestStageDiskMatchesReference(t *testing.T) {
	p := newDiskPipeline(t)
	p.start()
	cases := longCases(t)
	for round := range 2 {
		if n := p.run(cases); n > 0 {
			t.Fatalf("round %d: %d requests failed", round, n)
		}
		p.waitStagesHold()
	}
	st := p.e.Stats()
	t.Logf("leader: %d bytes out, %d in, %d of %d prompt tokens hit; stages: %+v", st.SwapBytesOut, st.SwapBytesIn, st.PrefixHit, st.PrefixQueried, p.diskStats())
	if st.SwapBytesOut == 0 || st.SwapBytesIn == 0 || st.PrefixHit == 0 {
		t.Errorf("the leader's disk tier was not used both ways: %+v", st)
	}
	for i, ds := range p.diskStats() {
		if ds.BytesOut == 0 || ds.BytesIn == 0 {
			t.Errorf("stage %v: disk tier not used both ways: %+v", diskRanges[i], ds)
		}
	}
}

// TestStageDiskWarmRestart: the whole pipeline restarts on its files; the prompts hit
// their prefixes on disk at once (the stages confirm them), with unchanged outputs.
func TestStageDiskWarmRestart(t *testing.T) {
	p := newDiskPipeline(t)
	p.start()
	cases := longCases(t)
	p.run(cases)
	p.waitStagesHold()
	p.stop()
	p.start()
	if n := p.run(cases); n > 0 {
		t.Fatalf("%d requests failed", n)
	}
	st := p.e.Stats()
	if st.SwapBytesIn == 0 || st.PrefixHit == 0 {
		t.Errorf("after a restart: %d bytes read from disk, %d prompt tokens hit", st.SwapBytesIn, st.PrefixHit)
	}
	for i, ds := range p.diskStats() {
		if ds.BytesIn == 0 {
			t.Errorf("stage %v loaded nothing after the restart: %+v", diskRanges[i], ds)
		}
	}
}

// TestStageDiskMissing: the leader's file holds prefixes that a stage does not (the stage
// restarted on a fresh file; another stage's disk is full): Have says no, the leader
// recomputes them, and outputs stay exact.
func TestStageDiskMissing(t *testing.T) {
	for _, tt := range []struct {
		name          string
		before, after func(p *diskPipeline) // edits before the first and the second start
	}{
		{"fresh file", func(*diskPipeline) {}, func(p *diskPipeline) { p.paths[Range{3, 5}] = filepath.Join(p.dir, "fresh.swap") }},
		{"full disk", func(p *diskPipeline) { p.max[Range{2, 3}] = 1 }, func(*diskPipeline) {}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newDiskPipeline(t)
			tt.before(p)
			p.start()
			cases := longCases(t)
			p.run(cases)
			p.stop()
			tt.after(p)
			p.start()
			if n := p.run(cases); n > 0 {
				t.Fatalf("%d requests failed", n)
			}
			if st := p.e.Stats(); st.SwapBytesIn != 0 {
				t.Errorf("the leader read %d bytes from disk that a stage lacks", st.SwapBytesIn)
			}
			for i, ds := range p.diskStats() {
				if ds.BytesIn != 0 {
					t.Errorf("stage %v loaded %d bytes", diskRanges[i], ds.BytesIn)
				}
			}
		})
	}
}

// TestStageDiskCorruptFile: a stage's file is garbage at restart: it is set aside with a
// log line, the stage serves on a fresh file, and the leader recomputes what that stage
// lost.
func TestStageDiskCorruptFile(t *testing.T) {
	p := newDiskPipeline(t)
	p.start()
	cases := longCases(t)
	p.run(cases)
	p.stop()
	mid := p.paths[Range{2, 3}]
	if err := os.WriteFile(mid, []byte(strings.Repeat("not a bbolt file ", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.start()
	if n := p.run(cases); n > 0 {
		t.Fatalf("%d requests failed", n)
	}
	if log := p.stages[Range{2, 3}].logString(); !strings.Contains(log, "file set aside") {
		t.Errorf("no set-aside line in the stage's log:\n%s", log)
	}
	if aside, _ := filepath.Glob(mid + ".corrupt-*"); len(aside) != 1 {
		t.Errorf("files set aside: %v, want one", aside)
	}
	if st := p.e.Stats(); st.SwapBytesIn != 0 {
		t.Errorf("the leader read %d bytes from disk that the stage lost", st.SwapBytesIn)
	}
}

// TestStageDiskCorruptBlock: a block a stage holds fails its checksum when the step that
// loads it runs, after Have counted it: the step fails, the pipeline's requests end with
// engine.ErrPipeline (the router resumes them), no request completes with wrong tokens,
// and the same prompts then complete exactly (the stage dropped the block; it is
// recomputed).
func TestStageDiskCorruptBlock(t *testing.T) {
	p := newDiskPipeline(t)
	p.start()
	cases := longCases(t)
	p.run(cases)
	p.waitStagesHold()
	p.stop()
	last := p.paths[Range{3, 5}]
	db, err := bolt.Open(last, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	key := blocks.ChainHash(diskSeed, cases[0].PromptIDs[:16]) // the first block of a prompt
	err = db.Update(func(tx *bolt.Tx) error {
		eb := tx.Bucket([]byte("blocks")).Bucket(key[:])
		if eb == nil {
			return fmt.Errorf("the stage's file lacks the prompt's first block")
		}
		v := append([]byte(nil), eb.Get([]byte("v"))...)
		v[len(v)-1] ^= 0xff // the payload's last byte: only its checksum can tell
		return eb.Put([]byte("v"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	p.start()
	if n := p.run(cases); n == 0 {
		t.Errorf("no request failed although a block stage [3, 5) confirmed is corrupt")
	}
	if log := p.stages[Range{3, 5}].logString(); !strings.Contains(log, "did not load") {
		t.Errorf("the stage did not log the failed load:\n%s", log)
	}
	if n := p.run(cases); n > 0 {
		t.Errorf("%d requests failed after the corrupt blocks were dropped", n)
	}
}
