package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/leader"
)

// startSwapWorker starts a worker with extra flags and returns its gRPC address, from
// the line it prints once ready ("ready ID layers R pipeline P grpc ADDR").
func (c *Cluster) startSwapWorker(w worker, flags ...string) string {
	args := append([]string{"--id", w.id, "--model", "../models/stories260K.bin", "--seeds", c.gossip, "--nats", c.nats,
		"--layers", w.layers, "--pipeline", w.pipeline}, flags...)
	line := waitLine(c.t, c.start(w.id, filepath.Join(bin, "node"), args...), "ready")
	i := strings.LastIndex(line, " grpc ")
	if i < 0 {
		c.t.Fatalf("no grpc address in %q", line)
	}
	return line[i+len(" grpc "):]
}

// TestPipelineDiskTier: a pipeline of two workers with 1 MiB of KV memory each and a disk
// tier each (--swap, with low watermarks so that every cold block goes to disk) serves
// every reference case exactly; long prompts served twice come back from disk the second
// time (the stages confirm and load their layers' blocks) with the same output; the
// leader reports the bytes its disk tier moved.
func TestPipelineDiskTier(t *testing.T) {
	c := startCluster(t, 0)
	dir := t.TempDir()
	flags := func(id string) []string {
		return []string{"--kv-memory", "1", "--swap", filepath.Join(dir, id+".swap"), "--swap-high", "0.3", "--swap-low", "0.1"}
	}
	addr := c.startSwapWorker(worker{"worker-1", "0:3", "p0"}, flags("worker-1")...)
	c.startSwapWorker(worker{"worker-2", "3:5", "p0"}, flags("worker-2")...)
	c.waitPipelines(1)

	cases := loadReference(t)
	for _, rc := range cases {
		s := streamCompletion(context.Background(), c.url, rc, nil)
		if s.err != nil {
			t.Fatal(s.err)
		}
		if s.text != rc.Text() {
			t.Errorf("prompt %q seed %d:\n got %q\nwant %q", rc.Prompt, rc.Seed, s.text, rc.Text())
		}
	}

	// Long prompts (a prompt and its greedy story), twice: the second round's prefixes
	// were moved to disk by the first round's successors.
	var long []refCase
	for _, rc := range cases {
		if rc.Temperature == 0 && len(rc.Text()) > 400 {
			lc := rc
			lc.Prompt = rc.Prompt + rc.Text()[:400]
			long = append(long, lc)
		}
	}
	first := make([]string, len(long))
	for round := range 2 {
		for i, lc := range long {
			s := streamCompletion(context.Background(), c.url, withMaxTokens(lc, 16), nil)
			if s.err != nil {
				t.Fatal(s.err)
			}
			if round == 0 {
				first[i] = s.text
			} else if s.text != first[i] {
				t.Errorf("long prompt %d from disk:\n got %q\nwant %q", i, s.text, first[i])
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lc, err := leader.Dial(ctx, addr, leader.DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	st, err := lc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s: %d KV blocks, swap bytes out %d, in %d; %d long prompts", st.NodeID, st.BlocksTotal, st.SwapBytesOut, st.SwapBytesIn, len(long))
	if st.SwapBytesOut == 0 || st.SwapBytesIn == 0 {
		t.Errorf("the disk tier moved %d bytes out and %d in; want both", st.SwapBytesOut, st.SwapBytesIn)
	}
	if len(long) == 0 {
		t.Error("no reference story is long enough for a long prompt")
	}
}

// withMaxTokens is c asking for n tokens (streamCompletion sends c.MaxTokens()).
func withMaxTokens(c refCase, n int) refCase {
	c.Steps = len(c.PromptIDs) + n - 1
	return c
}
