package e2e

import (
	"path/filepath"
	"testing"
)

// startWorkerWith starts a worker with extra flags and waits until it serves.
func (c *Cluster) startWorkerWith(id string, extra ...string) {
	c.t.Helper()
	args := append([]string{"--id", id, "--model", "../models/stories260K.bin", "--seeds", c.gossip, "--nats", c.nats}, extra...)
	args = append(args, c.extra...)
	waitLine(c.t, c.start(id, filepath.Join(bin, "node"), args...), "ready")
}

// TestPlacementByMemory starts workers without layer ranges that offer different memory
// (--memory, gossiped): stories260K with room for the KV of its full context (512
// tokens) takes 1.62 MiB, so a 1 MiB worker holds the first 2 layers and leaves the rest,
// which the next 1 MiB worker takes (the pipeline then serves the reference exactly), and
// a 2 MiB worker holds the whole model as a pipeline of its own.
func TestPlacementByMemory(t *testing.T) {
	c := startCluster(t, 0)
	want := map[string]string{"worker-1": "0:2 p0", "worker-2": "2:5 p0", "worker-3": "0:5 p1"}
	c.startWorkerWith("worker-1", "--memory", "1")
	c.startWorkerWith("worker-2", "--memory", "1")
	c.waitPipelines(1)
	checkReference(t, c.url)
	c.startWorkerWith("worker-3", "--memory", "2")
	c.waitPipelines(2)
	ms := members(t, c.url)
	for id, w := range want {
		if got := ms[id].Layers + " " + ms[id].Pipeline; got != w {
			t.Errorf("%s holds %s, want %s", id, got, w)
		}
	}
	checkReference(t, c.url)
}
