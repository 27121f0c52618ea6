package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The reliability report (docs/reliability.md) is written by the chaos suite itself from
// its figures: -chaos.report FILE, with -chaos.command naming the command that reproduces
// it. The rendering is here, untagged, so that the default run tests it.

// scenarioWhat says what each scenario's fault is, for the report.
var scenarioWhat = map[string]string{
	"fault-free":      "no fault: the load alone, the outputs every other scenario must equal",
	"kill-leader":     "SIGKILL of a pipeline's leader (stage 0) process, p0 and p1 in turn; Docker restarts the container",
	"kill-last-stage": "SIGKILL of a pipeline's last stage process, p0 and p1 in turn; Docker restarts the container",
	"pause-10s":       "`docker pause` of a worker for 10 s (worker-1 to worker-4 in turn: leaders and last stages), then `docker unpause`",
	"disconnect-15s":  "`docker network disconnect` of a worker for 15 s (worker-1 to worker-4 in turn), then `docker network connect` at its address",
	"kill-router":     "SIGKILL of router-1 while half the clients stream through it; they retry on router-2; Docker restarts it",
	"restart-swap":    "both leaders restarted (`docker restart`: SIGTERM, then start) one after the other during the load, each on its own swap volume; then the same prompts again must be served partly from the reopened files (the leaders' swap bytes in grow)",
	"corrupt-swap":    "a worker (worker-1 to worker-3 in turn) stopped, its bbolt swap file overwritten with garbage from the host, started again: it must log `swap: file set aside, starting a fresh one`, leave swap.db.corrupt-* in its volume, and serve",
	"full-swap":       "worker-4's swap volume (a 4 MiB tmpfs) filled to the last byte for 5 s of load: its disk tier refuses writes, the pipeline recomputes, the container must not restart",
}

// reliabilityReport renders the figures of one run as docs/reliability.md.
func reliabilityReport(results []scenarioResult, date time.Time, iterations, requests, attempts int, command string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	seconds := func(ms int64) string { return fmt.Sprintf("%.1f s", float64(ms)/1000) }
	lost, differing := 0, 0
	for _, r := range results {
		lost += r.Lost
		differing += r.Differing
	}
	w("# Reliability\n")
	w("The chaos suite injects faults into the container cluster (deploy/compose/docker-compose.yml: "+
		"NATS, two routers, four workers forming two pipelines of two stages of stories260K) while a "+
		"load of %d streaming requests per iteration runs, half through each router, every request one "+
		"of the llama2.c reference cases (greedy and seeded sampling).\n", requests)
	w("For every scenario it asserts: every request completes, or fails with a retryable error (no "+
		"connection, a cut stream, 429/503, an error event of type service_unavailable) and completes "+
		"on retry (at most %d attempts, on the other router in turn); every stream's text equals the "+
		"reference (no token missing or repeated, the same output as the fault-free run); and the "+
		"cluster returns to full capacity (both routers route both pipelines, every leader's KV blocks "+
		"all free again) within 120 s of the fault's end. Recovery is timed from the fault's end: the "+
		"unpause, the reconnect, or for a kill the kill itself (the compose file's restart policy, "+
		"`unless-stopped`, starts a crashed container again at once: the restart and the node's "+
		"start-up are part of the recovery).\n", attempts)
	w("Run of %s, %d iteration(s) per scenario:\n", date.UTC().Format(time.RFC3339), iterations)
	w("| scenario | iterations | requests | streaming at the fault | faults | client retries | lost | differing | recovery median | recovery worst |")
	w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range results {
		median, worst := "-", "-"
		if len(r.RecoveryMS) > 0 {
			median, worst = seconds(r.MedianMS), seconds(r.WorstMS)
		}
		w("| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s |", r.Name, r.Iterations, r.Requests, r.InFlight,
			r.Faults, r.Retries, r.Lost, r.Differing, median, worst)
	}
	w("\nRecovery median is the lower median of the iterations' times.\n")
	w("Requests lost over all scenarios: **%d**; outputs that differed: **%d**.\n", lost, differing)
	w("## Scenarios\n")
	for _, r := range results {
		w("- **%s**: %s.", r.Name, scenarioWhat[r.Name])
	}
	w("\n## Reading the recovery times\n")
	w("- A partitioned worker declares the others dead and they declare it dead; once reconnected it " +
		"is merged back either by refuting its death (when it still suspects rather than has declared " +
		"the others dead) or, after a longer cut, by its rejoin loop, which joins the seeds (the routers) " +
		"every `RejoinInterval`: 30 s with `--lan`. The worst disconnect recoveries are that loop.")
	w("- restart-swap waits, inside the fault, until each restarted leader is routed again (so that " +
		"the two are never down together); its recovery is what is left after that. full-swap takes no " +
		"capacity away: the full disk only makes the worker recompute.\n")
	w("## Reproduce\n")
	w("```sh")
	w("%s    # builds the images, runs the suite, removes the cluster; figures in .chaos/", command)
	w("scripts/chaos.sh --soak 20   # the long soak: 20 iterations of every scenario")
	w("KVMESH_CHAOS_REPORT=1 scripts/chaos.sh --soak 4   # and copy the report to docs/reliability.md")
	w("```\n")
	w("The machine: 2 shared cores, Docker 20.10, docker-compose 1.29; other builds and tests ran at " +
		"the same time, so recovery times include CPU starvation.")
	return b.String()
}

// TestReliabilityReport: the report sums lost and differing requests over the scenarios,
// shows recovery times only where there were any, and names every scenario's fault.
func TestReliabilityReport(t *testing.T) {
	results := []scenarioResult{
		{Name: "fault-free", Iterations: 1, Requests: 32, InFlight: 32},
		{Name: "kill-leader", Iterations: 2, Requests: 64, InFlight: 60, Faults: 2, Lost: 1, RecoveryMS: []int64{2800, 3300}, MedianMS: 2800, WorstMS: 3300},
		{Name: "pause-10s", Iterations: 2, Requests: 64, Faults: 2, Differing: 2, RecoveryMS: []int64{0, 600}, MedianMS: 0, WorstMS: 600},
	}
	md := reliabilityReport(results, time.Date(2026, 11, 30, 4, 20, 30, 0, time.UTC), 2, 32, 4, "scripts/chaos.sh --short")
	for _, want := range []string{
		"Run of 2026-11-30T04:20:30Z, 2 iteration(s) per scenario",
		"| fault-free | 1 | 32 | 32 | 0 | 0 | 0 | 0 | - | - |",
		"| kill-leader | 2 | 64 | 60 | 2 | 0 | 1 | 0 | 2.8 s | 3.3 s |",
		"| pause-10s | 2 | 64 | 0 | 2 | 0 | 0 | 2 | 0.0 s | 0.6 s |",
		"Requests lost over all scenarios: **1**; outputs that differed: **2**.",
		"- **kill-leader**: SIGKILL of a pipeline's leader",
		"at most 4 attempts",
		"scripts/chaos.sh --short    # builds the images",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}
