//go:build chaos

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The scenarios of the workers' disk tiers (--swap=/data/swap.db in every worker's own
// volume; worker-4's volume is a 4 MiB tmpfs). They need the container cluster: the
// files live in Docker volumes.

// addr is the address of a container on the network kvmesh, which the host reaches.
func (c *composeCluster) addr(id string) string {
	return c.docker("inspect", "-f", `{{(index .NetworkSettings.Networks "`+composeNetwork+`").IPAddress}}`, container(id))
}

// metric reads the value of one series (name and labels exactly as exposed, e.g.
// `kvmesh_swap_bytes{direction="in"}`) from a worker's GET /metrics.
func (c *composeCluster) metric(id, series string) float64 {
	c.t.Helper()
	resp, err := http.Get("http://" + c.addr(id) + ":9100/metrics")
	if err != nil {
		c.t.Fatalf("%s /metrics: %v", id, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				c.t.Fatalf("%s %s: %q", id, series, v)
			}
			return f
		}
	}
	c.t.Fatalf("%s /metrics has no %s", id, series)
	return 0
}

// volume is the host directory of a worker's /data volume.
func (c *composeCluster) volume(id string) string {
	return c.docker("volume", "inspect", "-f", "{{.Mountpoint}}", "kvmesh_"+id+"-data")
}

// restarts is how often Docker has restarted a container, and when it last started.
func (c *composeCluster) restarts(id string) string {
	return c.docker("inspect", "-f", "{{.RestartCount}} {{.State.StartedAt}}", container(id))
}

// waitRouted waits until every router routes the leader id again.
func (c *composeCluster) waitRouted(id string) {
	c.t.Helper()
	deadline := time.Now().Add(recoveryLimit)
	for {
		n := 0
		for _, url := range c.routerURLs() {
			for _, m := range view(url) {
				if m.ID == id && m.Routed {
					n++
				}
			}
		}
		if n == len(c.routerURLs()) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not routed again within %v", id, recoveryLimit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const (
	diskBlocks = `kvmesh_kv_blocks{state="cached",tier="disk"}`
	swapIn     = `kvmesh_swap_bytes{direction="in"}`
)

// swapScenarios are the disk-tier scenarios of the compose cluster.
func swapScenarios(c *composeCluster, cases []refCase) []scenario {
	leaders := c.leaders()
	return []scenario{
		{
			// Prompts that continue the reference cases by 48 generated tokens (three full
			// blocks the loads have cached) are answered once; then both leaders restart
			// (SIGTERM, then start) one after the other while the load runs, each on its
			// own volume. Asked again, the same prompts must be answered identically and
			// partly from the reopened files: the leaders read bytes back from disk.
			name: "restart-swap",
			inject: func(_ testCluster, i int) func() {
				c.warm = answers(c.t, c.routerURLs()[0], continued(cases))
				for _, id := range leaders {
					if c.metric(id, diskBlocks) == 0 {
						c.t.Errorf("%s holds no block on disk before its restart: the scenario tests nothing", id)
					}
					c.docker("restart", "--time", "15", container(id))
					c.waitRouted(id)
				}
				return nil
			},
			verify: func(t *testing.T, _ testCluster, i int) {
				var before float64
				for _, id := range leaders {
					if n := c.metric(id, diskBlocks); n == 0 {
						t.Errorf("%s: no block on disk after the restart: its file was not reopened", id)
					}
					before += c.metric(id, swapIn)
				}
				again := answers(t, c.routerURLs()[1], continued(cases))
				for j, want := range c.warm {
					if again[j] != want {
						t.Errorf("continued prompt %d after the restarts:\n got %q\nwant %q", j, again[j], want)
					}
				}
				var after float64
				for _, id := range leaders {
					after += c.metric(id, swapIn)
				}
				t.Logf("restart-swap: the leaders read %.0f bytes of cached prefixes back from disk", after-before)
				if after <= before {
					t.Errorf("no prefix served from disk after the restarts (swap bytes in %.0f -> %.0f)", before, after)
				}
			},
		},
		{
			// A worker stops, its bbolt file is overwritten with garbage, and it starts
			// again: it sets the file aside with a clear log line and serves.
			name: "corrupt-swap",
			inject: func(_ testCluster, i int) func() {
				// worker-1 to worker-3 in turn: worker-4's volume is a tmpfs, gone with
				// its stopped container.
				id := fmt.Sprintf("worker-%d", i%3+1)
				since := time.Now().UTC().Format(time.RFC3339)
				c.docker("stop", "--time", "15", container(id))
				path := filepath.Join(c.volume(id), "swap.db")
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					c.t.Fatalf("%s: opening its swap file on the host: %v", id, err)
				}
				garbage := make([]byte, 16<<10) // both bbolt meta pages and more
				for j := range garbage {
					garbage[j] = byte(0xA5 ^ j)
				}
				_, err = f.WriteAt(garbage, 0)
				f.Close()
				if err != nil {
					c.t.Fatal(err)
				}
				c.docker("start", container(id))
				c.corrupted = append(c.corrupted, corruption{id, since})
				return nil
			},
			verify: func(t *testing.T, _ testCluster, i int) {
				k := c.corrupted[len(c.corrupted)-1]
				logs := c.docker("logs", "--since", k.since, container(k.id))
				if !strings.Contains(logs, "swap: file set aside, starting a fresh one") {
					t.Errorf("%s: no log line saying its corrupt swap file was set aside:\n%s", k.id, tail(logs, 2000))
				}
				aside, _ := filepath.Glob(filepath.Join(c.volume(k.id), "swap.db.corrupt-*"))
				if len(aside) == 0 {
					t.Errorf("%s: no swap.db.corrupt-* set aside in its volume", k.id)
				}
			},
		},
		{
			// worker-4's tmpfs volume is filled to the last byte while the load runs: its
			// disk tier refuses writes, the pipeline recomputes, nothing crashes.
			name: "full-swap",
			inject: func(_ testCluster, i int) func() {
				before := c.restarts("worker-4")
				fill := filepath.Join(c.volume("worker-4"), "fill")
				f, err := os.Create(fill)
				if err != nil {
					c.t.Fatal(err)
				}
				chunk := make([]byte, 64<<10)
				for {
					if _, err := f.Write(chunk); err != nil {
						break // ENOSPC: the volume is full
					}
				}
				f.Close()
				time.Sleep(5 * time.Second) // the load runs against the full disk
				if after := c.restarts("worker-4"); after != before {
					c.t.Errorf("worker-4 restarted with its swap volume full (%s -> %s)", before, after)
				}
				os.Remove(fill)
				return nil
			},
		},
	}
}

// corruption is a corrupt-swap fault: whose file, and when (for docker logs --since).
type corruption struct{ id, since string }

// continued is the reference cases with their first 48 generated tokens moved into the
// prompt (those long enough).
func continued(cases []refCase) []refCase {
	var out []refCase
	for _, rc := range cases {
		if len(rc.GeneratedIDs) > 64 {
			out = append(out, rc.Continued(48))
		}
	}
	return out
}

// answers asks the router at url for a completion of each case's prompt ids, one after
// the other, and returns the texts.
func answers(t *testing.T, url string, cases []refCase) []string {
	t.Helper()
	out := make([]string, len(cases))
	for i, rc := range cases {
		body, _ := json.Marshal(map[string]any{
			"model": "stories260K", "prompt": rc.PromptIDs, "max_tokens": rc.MaxTokens(),
			"temperature": rc.Temperature, "top_p": rc.TopP, "seed": rc.Seed,
		})
		resp, err := http.Post(url+"/v1/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("continued prompt %d: %v", i, err)
		}
		var r struct {
			Choices []struct{ Text string } `json:"choices"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(r.Choices) != 1 {
			t.Fatalf("continued prompt %d: status %d, %v", i, resp.StatusCode, err)
		}
		out[i] = r.Choices[0].Text
	}
	return out
}
