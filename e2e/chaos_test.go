//go:build chaos

package e2e

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The chaos suite (go test -tags chaos ./e2e -run Chaos; scripts/chaos.sh builds the
// images and runs it): faults injected into the container cluster of
// deploy/compose/docker-compose.yml while streaming loads run, through the docker and
// docker-compose CLIs.
var (
	chaosIterations = flag.Int("chaos.iterations", 2, "iterations of every scenario")
	chaosRequests   = flag.Int("chaos.requests", 32, "streaming requests of one iteration's load")
	chaosOut        = flag.String("chaos.out", "", "write the figures of every scenario as JSON to this `file`")
	chaosOnly       = flag.String("chaos.only", "", "run only the scenarios whose names contain this")
	chaosReport     = flag.String("chaos.report", "", "write the reliability report (Markdown) to this `file`")
	chaosCommand    = flag.String("chaos.command", "scripts/chaos.sh --short", "the command the report names as reproducing it")
)

// composeCluster is the compose cluster (project kvmesh) as a testCluster.
type composeCluster struct {
	t   *testing.T
	mu  sync.Mutex        // protects ips
	ips map[string]string // addresses of disconnected containers on the network kvmesh

	corrupted []corruption // the corrupt-swap faults so far (the test goroutine only)
	warm      []string     // restart-swap's answers before the restarts
}

var _ testCluster = (*composeCluster)(nil)

const composeNetwork = "kvmesh"

// startCompose starts the compose cluster (the images must exist: scripts/images.sh) and
// removes it, volumes and all, when the test ends.
func startCompose(t *testing.T) *composeCluster {
	t.Helper()
	c := &composeCluster{t: t, ips: map[string]string{}}
	compose := func(args ...string) {
		cmd := exec.Command("../scripts/compose.sh", args...)
		cmd.Env = append(os.Environ(), "KVMESH_SKIP_IMAGES=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("scripts/compose.sh %s: %v\n%s", args[0], err, tail(string(out), 3000))
		}
	}
	compose("down")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("../scripts/compose.sh", "logs").CombinedOutput()
			os.MkdirAll("../.chaos", 0o755)
			os.WriteFile("../.chaos/compose-logs.txt", out, 0o644)
			t.Logf("the containers' logs: .chaos/compose-logs.txt")
		}
		compose("down")
	})
	compose("up")
	return c
}

func (c *composeCluster) docker(args ...string) string {
	c.t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func container(id string) string { return "kvmesh_" + id + "_1" }

func (c *composeCluster) routerURLs() []string {
	return []string{"http://127.0.0.1:8080", "http://127.0.0.1:8081"}
}
func (c *composeCluster) leaders() []string { return []string{"worker-1", "worker-3"} }
func (c *composeCluster) restart(id string) { c.docker("start", container(id)) } // no-op when running
func (c *composeCluster) pause(id string)   { c.docker("pause", container(id)) }
func (c *composeCluster) unpause(id string) { c.docker("unpause", container(id)) }

// kill sends SIGKILL to the node's process itself, as a crash would, and waits until it
// is gone. The process is found in /proc by its --id argument rather than through
// `docker inspect`, whose latency (a second on a loaded machine) would let short streams
// finish before the fault. The compose file's restart policy then starts the container
// again, as it would after a crash; restart starts it if it has not.
func (c *composeCluster) kill(id string) {
	pid := pidOf(c.t, id)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill -9 %s (pid %d): %v", id, pid, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return // gone, or a zombie until Docker reaps it
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s (pid %d) still alive 15 s after SIGKILL", id, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidOf finds the process of the node id: the one whose arguments include --id=id.
func pidOf(t *testing.T, id string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 1 && (args[0] == "/node" || args[0] == "/router") && slices.Contains(args, "--id="+id) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no process of %s", id)
	return 0
}

func (c *composeCluster) disconnect(id string) {
	ip := c.docker("inspect", "-f", `{{(index .NetworkSettings.Networks "`+composeNetwork+`").IPAddress}}`, container(id))
	c.mu.Lock()
	c.ips[id] = ip
	c.mu.Unlock()
	c.docker("network", "disconnect", composeNetwork, container(id))
}

// reconnect joins the network again at the address the node gossips, under its service
// name.
func (c *composeCluster) reconnect(id string) {
	c.mu.Lock()
	ip := c.ips[id]
	c.mu.Unlock()
	c.docker("network", "connect", "--ip", ip, "--alias", id, composeNetwork, container(id))
}

// TestChaos runs every scenario against the compose cluster and writes the figures.
func TestChaos(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed")
	}
	cases := loadReference(t)
	c := startCompose(t)
	killRouter := scenario{name: "kill-router", inject: func(tc testCluster, i int) func() {
		c.kill("router-1")
		return func() { c.restart("router-1") }
	}}
	scenarios := append([]scenario{faultFree, killStage(0), killStage(1), pauseWorker, disconnectWorker, killRouter},
		swapScenarios(c, cases)...)
	var results []scenarioResult
	for _, sc := range scenarios {
		if !strings.Contains(sc.name, *chaosOnly) {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			c.t = t
			iterations := *chaosIterations
			if sc.inject == nil {
				iterations = 1
			}
			results = append(results, runScenario(t, c, sc, cases, iterations, *chaosRequests))
		})
		c.t = t
	}
	writeChaosResults(t, results)
}

// writeChaosResults writes the figures as JSON to -chaos.out and the report made of them
// to -chaos.report.
func writeChaosResults(t *testing.T, results []scenarioResult) {
	date := time.Now()
	if err := writeReliability(results, date); err != nil {
		t.Fatal(err)
	}
	if *chaosOut == "" {
		return
	}
	b, err := json.MarshalIndent(map[string]any{
		"date": date.UTC().Format(time.RFC3339), "cluster": "deploy/compose/docker-compose.yml",
		"iterations": *chaosIterations, "requests_per_iteration": *chaosRequests, "scenarios": results,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*chaosOut, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeReliability writes the report to -chaos.report, if set.
func writeReliability(results []scenarioResult, date time.Time) error {
	if *chaosReport == "" {
		return nil
	}
	md := reliabilityReport(results, date, *chaosIterations, *chaosRequests, maxAttempts, *chaosCommand)
	return os.WriteFile(*chaosReport, []byte(md), 0o644)
}
