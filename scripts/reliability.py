#!/usr/bin/env python3
"""Turns the chaos suite's figures (the JSON of `go test -tags chaos ./e2e -chaos.out FILE`)
into the reliability report, docs/reliability.md, on stdout.

    python3 scripts/reliability.py .chaos/results.json "scripts/chaos.sh --short" > docs/reliability.md
"""
import json
import sys

WHAT = {
    "fault-free": "no fault: the load alone, the outputs every other scenario must equal",
    "kill-leader": "SIGKILL of a pipeline's leader (stage 0) process, p0 and p1 in turn; Docker restarts the container",
    "kill-last-stage": "SIGKILL of a pipeline's last stage process, p0 and p1 in turn; Docker restarts the container",
    "pause-10s": "`docker pause` of a worker for 10 s (worker-1 to worker-4 in turn: leaders and last stages), then `docker unpause`",
    "disconnect-15s": "`docker network disconnect` of a worker for 15 s (worker-1 to worker-4 in turn), then `docker network connect` at its address",
    "kill-router": "SIGKILL of router-1 while half the clients stream through it; they retry on router-2; Docker restarts it",
    "restart-swap": "both leaders restarted (`docker restart`: SIGTERM, then start) one after the other during the load, each on its own swap volume; then the same prompts again must be served partly from the reopened files (the leaders' swap bytes in grow)",
    "corrupt-swap": "a worker (worker-1 to worker-3 in turn) stopped, its bbolt swap file overwritten with garbage from the host, started again: it must log `swap: file set aside, starting a fresh one`, leave swap.db.corrupt-* in its volume, and serve",
    "full-swap": "worker-4's swap volume (a 4 MiB tmpfs) filled to the last byte for 5 s of load: its disk tier refuses writes, the pipeline recomputes, the container must not restart",
}


def seconds(ms):
    return "-" if ms is None else "%.1f s" % (ms / 1000)


def main():
    src, command = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "scripts/chaos.sh --short"
    with open(src) as f:
        run = json.load(f)
    rows = run["scenarios"]
    total_lost = sum(r["lost"] for r in rows)
    total_diff = sum(r["differing"] for r in rows)
    out = []
    w = out.append
    w("# Reliability")
    w("")
    w("The chaos suite injects faults into the container cluster (%s: NATS, two routers, "
      "four workers forming two pipelines of two stages of stories260K) while a load of "
      "%d streaming requests per iteration runs, half through each router, every request "
      "one of the llama2.c reference cases (greedy and seeded sampling)." % (run["cluster"], run["requests_per_iteration"]))
    w("")
    w("For every scenario it asserts: every request completes, or fails with a retryable "
      "error (no connection, a cut stream, 429/503, an error event of type "
      "service_unavailable) and completes on retry (at most %d attempts, on the other router "
      "in turn); every stream's text equals the reference (no token missing or repeated, "
      "the same output as the fault-free run); and the cluster returns to full capacity "
      "(both routers route both pipelines, every leader's KV blocks all free again) within "
      "120 s of the fault's end. Recovery is timed from the fault's end: the unpause, the "
      "reconnect, or for a kill the kill itself (the compose file's restart policy, "
      "`unless-stopped`, starts a crashed container again at once: the restart and the "
      "node's start-up are part of the recovery)." % 4)
    w("")
    w("Run of %s, %d iteration(s) per scenario:" % (run["date"], run["iterations"]))
    w("")
    w("| scenario | iterations | requests | streaming at the fault | faults | client retries | lost | differing | recovery median | recovery worst |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        rec = r.get("recovery_ms") or []
        w("| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s |" % (
            r["name"], r["iterations"], r["requests"], r.get("in_flight", 0), r["faults"], r["retries"], r["lost"], r["differing"],
            seconds(r["recovery_median_ms"]) if rec else "-", seconds(r["recovery_worst_ms"]) if rec else "-"))
    w("")
    w("Recovery median is the lower median of the iterations' times.")
    w("")
    w("Requests lost over all scenarios: **%d**; outputs that differed: **%d**." % (total_lost, total_diff))
    w("")
    w("## Scenarios")
    w("")
    for r in rows:
        w("- **%s**: %s." % (r["name"], WHAT.get(r["name"], "")))
    w("")
    w("## Reading the recovery times")
    w("")
    w("- A partitioned worker declares the others dead and they declare it dead; once "
      "reconnected it is merged back either by refuting its death (when it still suspects "
      "rather than has declared the others dead) or, after a longer cut, by its rejoin loop, "
      "which joins the seeds (the routers) every `RejoinInterval`: 30 s with `--lan`. The "
      "worst disconnect recoveries are that loop.")
    w("- restart-swap waits, inside the fault, until each restarted leader is routed again "
      "(so that the two are never down together); its recovery is what is left after that. "
      "full-swap takes no capacity away: the full disk only makes the worker recompute.")
    w("")
    w("## Reproduce")
    w("")
    w("```sh")
    w("%s    # builds the images, runs the suite, removes the cluster; figures in .chaos/" % command)
    w("scripts/chaos.sh --soak 20   # the long soak: 20 iterations of every scenario")
    w("python3 scripts/reliability.py .chaos/results.json > docs/reliability.md")
    w("```")
    w("")
    w("The machine: 2 shared cores, Docker 20.10, docker-compose 1.29; other builds and tests "
      "ran at the same time, so recovery times include CPU starvation.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
