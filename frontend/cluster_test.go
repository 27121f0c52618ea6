package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/internal/reftest"

	"github.com/kvmesh/kvmesh/cluster"
	"github.com/kvmesh/kvmesh/node"
)

// refCase is one reference generation of llama2.c's run.c.
type refCase = reftest.Case

// completion asks the router for a completion of c and returns its text.
func completion(t *testing.T, url string, c refCase) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": "stories260K", "prompt": c.Prompt, "max_tokens": c.MaxTokens(),
		"temperature": c.Temperature, "top_p": c.TopP, "seed": c.Seed,
	})
	resp, err := http.Post(url+"/v1/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var out struct {
		Choices []struct{ Text string } `json:"choices"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out.Choices[0].Text
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterInProcess starts a router and four workers forming two pipelines of two
// stages, in one process on loopback ports, and checks every reference case through the
// router's HTTP API.
func TestClusterInProcess(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	gossip := cluster.LocalConfig()
	f, err := Start(ctx, Config{
		ID: "router-1", Model: "../models/stories260K.bin", Tokenizer: "../models/tok512.bin",
		HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", Gossip: gossip, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Shutdown(ctx)
	gossip.Seeds = []string{f.GossipAddr()}
	for i, w := range []struct{ rng, pipe string }{{"0:2", "p0"}, {"2:5", "p0"}, {"0:3", "p1"}, {"3:5", "p1"}} {
		n, err := node.Start(ctx, node.Config{
			ID: fmt.Sprintf("worker-%d", i+1), Model: "../models/stories260K.bin", Range: w.rng, Pipeline: w.pipe,
			Gossip: gossip, NATSURL: f.NATSURL(), Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Shutdown(ctx)
	}
	waitFor(t, "two pipelines serving", func() bool { return len(f.Leaders()) == 2 })
	for _, c := range reftest.All(t) {
		if got, want := completion(t, f.URL(), c), c.Text(); got != want {
			t.Errorf("prompt %q seed %d:\n got %q\nwant %q", c.Prompt, c.Seed, got, want)
		}
	}
}
