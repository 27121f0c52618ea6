package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/leader"
)

// startRouter starts one more router that joins the cluster's gossip and uses the first
// router's NATS, and returns its base URL.
func (c *Cluster) startRouter(id string, extra ...string) string {
	c.t.Helper()
	args := append([]string{"--id", id, "--model", "../models/stories260K.bin", "--tokenizer", "../models/tok512.bin",
		"--http", "127.0.0.1:0", "--gossip", "127.0.0.1:0", "--seeds", c.gossip, "--nats-url", c.nats}, extra...)
	args = append(args, c.extra...)
	m := lineRE.FindStringSubmatch(waitLine(c.t, c.start(id, filepath.Join(bin, "router"), args...), "url="))
	return m[1]
}

// routedBy counts the pipelines the router at url sends requests to.
func routedBy(t *testing.T, url string) int {
	n := 0
	for _, m := range members(t, url) {
		if m.Routed {
			n++
		}
	}
	return n
}

// completeIDs asks the router at url for a completion of the token ids prompt.
func completeIDs(url string, prompt []int, maxTokens int) error {
	body, _ := json.Marshal(map[string]any{"model": "stories260K", "prompt": prompt, "max_tokens": maxTokens, "temperature": 0})
	resp, err := http.Post(url+"/v1/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return nil
}

// prefixWorkload is the workload of router's TestKVAwareRoutingHitRatio: 4 rounds over 5
// groups of prompts, each group sharing a 97-token prefix (BOS and 96 tokens: 6 full
// blocks of 16) and each prompt ending in a token of its own. set picks disjoint groups,
// so that the workloads of several measurements on one cluster share nothing.
func prefixWorkload(set int) [][]int {
	var out [][]int
	for round := range 4 {
		for g := range 5 { // odd, so round robin does not happen to keep a group on one pipeline
			prompt := []int{1}
			for i := range 96 {
				prompt = append(prompt, 3+((g+5*set)*131+i*7)%500)
			}
			out = append(out, append(prompt, 3+round))
		}
	}
	return out
}

// hitRatio runs the workload through send, one request at a time, and returns the share
// of prompt tokens the leaders found in their prefix caches meanwhile.
func hitRatio(t *testing.T, leaders []*leader.Client, workload [][]int, send func(i int, prompt []int) error) float64 {
	t.Helper()
	counts := func() (q, h int64) {
		for _, l := range leaders {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := l.Status(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			q, h = q+st.PrefixQueried, h+st.PrefixHit
		}
		return q, h
	}
	q0, h0 := counts()
	for i, p := range workload {
		if err := send(i, p); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	q1, h1 := counts()
	if q1 == q0 {
		t.Fatal("the leaders looked nothing up in their prefix caches")
	}
	return float64(h1-h0) / float64(q1-q0)
}

// TestTwoRouters runs two routers over two pipelines of two stages, the second router
// joining the first's gossip and using its NATS (--nats-url): both serve the reference
// exactly, and a workload of groups sharing long prefixes, sent to them in turn, finds
// its prefixes cached as often as one pipeline holding everything would (both routers'
// prefix indexes are fed by the same NATS events), and clearly more often than a third
// router that routes round robin.
func TestTwoRouters(t *testing.T) {
	c := startCluster(t, 2,
		worker{"worker-1", "0:3", "p0"}, worker{"worker-2", "3:5", "p0"},
		worker{"worker-3", "0:2", "p1"}, worker{"worker-4", "2:5", "p1"})
	url2 := c.startRouter("router-2")
	urlRR := c.startRouter("router-3", "--round-robin")
	for _, url := range []string{url2, urlRR} {
		waitFor(t, url+" routes 2 pipelines", 30*time.Second, func() bool { return routedBy(t, url) == 2 })
	}
	checkReference(t, c.url, url2)

	ms := members(t, c.url)
	var leaders []*leader.Client
	for _, id := range []string{"worker-1", "worker-3"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l, err := leader.Dial(ctx, ms[id].GRPC, leader.DefaultClientConfig())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		leaders = append(leaders, l)
	}
	one := hitRatio(t, leaders, prefixWorkload(0), func(_ int, p []int) error {
		// One pipeline holding everything: every request to worker-1's pipeline.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		events, err := leaders[0].Submit(ctx, engine.Request{Prompt: p, MaxTokens: 4})
		if err != nil {
			return err
		}
		for ev := range events {
			if ev.Err != nil {
				return ev.Err
			}
		}
		return nil
	})
	routers := []string{c.url, url2}
	aware := hitRatio(t, leaders, prefixWorkload(1), func(i int, p []int) error { return completeIDs(routers[i%2], p, 4) })
	rr := hitRatio(t, leaders, prefixWorkload(2), func(_ int, p []int) error { return completeIDs(urlRR, p, 4) })
	t.Logf("prefix-cache hit ratio on real processes: one pipeline %.3f, KV-aware over two pipelines through two routers in turn %.3f, round robin %.3f", one, aware, rr)
	if aware < 0.9*one {
		t.Errorf("KV-aware routing hit ratio %.3f is below 90%% of one pipeline's %.3f", aware, one)
	}
	if aware < rr+0.1 {
		t.Errorf("KV-aware routing hit ratio %.3f is not clearly above round robin's %.3f", aware, rr)
	}
}
