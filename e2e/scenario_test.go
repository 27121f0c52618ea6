package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// scenario is one kind of fault the chaos suite injects while a load streams. inject runs
// once every stream of the load has started; it may sleep (a pause, a partition) and undo
// its fault itself, or return a heal that runs once the load is over (a killed node is
// started again). Recovery is timed from the end of the fault: when inject returns, or,
// for a fault with a heal (a kill), from the fault itself, the restart included (the
// container cluster's restart policy restarts a killed container at once; the process
// cluster restarts it once the load is over).
type scenario struct {
	name   string
	inject func(c testCluster, iteration int) (heal func())
	// drops: the fault must take a pipeline out of routing while it lasts (a frozen or
	// unreachable worker), not leave the routers sending requests into it. A killed
	// worker's pipeline may be back before anyone looks: its container restarts at once.
	drops bool
	// verify, when set, checks what the scenario promises beyond the common checks, once
	// the cluster is back at full capacity.
	verify func(t *testing.T, c testCluster, iteration int)
}

// scenarioResult is what the iterations of one scenario measured, as the reliability
// report shows it.
type scenarioResult struct {
	Name       string `json:"name"`
	Iterations int    `json:"iterations"`
	Requests   int    `json:"requests"`
	Faults     int    `json:"faults"`
	Retries    int    `json:"retries"`
	Lost       int    `json:"lost"`
	Differing  int    `json:"differing"`
	// InFlight counts the requests still streaming when their iteration's fault came.
	InFlight int `json:"in_flight"`
	// Unrouted counts the iterations in which the faulted pipeline left routing.
	Unrouted   int     `json:"unrouted"`
	RecoveryMS []int64 `json:"recovery_ms"`
	MedianMS   int64   `json:"recovery_median_ms"`
	WorstMS    int64   `json:"recovery_worst_ms"`
}

// recoveryLimit bounds the return to full capacity after a fault ends.
const recoveryLimit = 120 * time.Second

// runScenario runs iterations of sc against c, each a load of n streaming requests of
// cases with the fault injected mid-generation; every iteration must lose no request,
// match the reference, and return the cluster to full capacity within recoveryLimit.
func runScenario(t *testing.T, c testCluster, sc scenario, cases []refCase, iterations, n int) scenarioResult {
	t.Helper()
	res := scenarioResult{Name: sc.name, Iterations: iterations}
	waitFullCapacity(t, c, recoveryLimit)
	for i := range iterations {
		var heal func()
		var faultEnd time.Time
		stopWatch, minRouted := watchRouting(c)
		load := runLoad(t, c.routerURLs(), cases, n, func() {
			if sc.inject == nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // into the generations
			start := time.Now()
			heal = sc.inject(c, i)
			faultEnd = time.Now()
			if heal != nil {
				faultEnd = start // a kill ends at once; the restart is part of the recovery
			}
			res.Faults++
		})
		load.check(t, sc.name)
		if heal != nil {
			heal()
		}
		stopWatch()
		if *minRouted < len(c.leaders()) {
			res.Unrouted++
		} else if sc.drops {
			t.Errorf("%s iteration %d: the faulted pipeline never left routing", sc.name, i+1)
		}
		res.Requests += load.Requests
		res.Retries += load.Retries
		res.Lost += load.Lost
		res.Differing += load.Differing
		res.InFlight += load.InFlight
		if sc.inject == nil {
			continue
		}
		waitFullCapacity(t, c, recoveryLimit-time.Since(faultEnd))
		rec := time.Since(faultEnd)
		if sc.verify != nil {
			sc.verify(t, c, i)
		}
		res.RecoveryMS = append(res.RecoveryMS, rec.Milliseconds())
		t.Logf("%s iteration %d: %d requests (%d streaming at the fault), %d retries, recovered %v after the fault ended",
			sc.name, i+1, load.Requests, load.InFlight, load.Retries, rec.Round(time.Millisecond))
	}
	if len(res.RecoveryMS) > 0 {
		s := slices.Sorted(slices.Values(res.RecoveryMS))
		res.MedianMS, res.WorstMS = s[(len(s)-1)/2], s[len(s)-1] // the lower median
	}
	return res
}

// watchRouting polls, until stop is called, how many leaders the routers that answer
// route to, and keeps the least seen.
func watchRouting(c testCluster) (stop func(), least *int) {
	least = new(int)
	*least = len(c.leaders())
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			for _, url := range c.routerURLs() {
				if ms := view(url); ms != nil {
					n := 0
					for _, m := range ms {
						if m.Routed {
							n++
						}
					}
					*least = min(*least, n)
				}
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-finished }, least
}

// The scenarios both clusters run; victims alternate between the two pipelines.
var (
	faultFree = scenario{name: "fault-free"}

	// killStage kills the worker at a pipeline stage (0: the leader) with SIGKILL.
	killStage = func(stage int) scenario {
		return scenario{name: []string{"kill-leader", "kill-last-stage"}[stage], inject: func(c testCluster, i int) func() {
			id := pipelineWorker(i, stage)
			c.kill(id)
			return func() { c.restart(id) }
		}}
	}

	pauseWorker = scenario{name: "pause-10s", inject: func(c testCluster, i int) func() {
		id := anyWorker(i)
		c.pause(id)
		time.Sleep(10 * time.Second)
		c.unpause(id)
		return nil
	}, drops: true}

	disconnectWorker = scenario{name: "disconnect-15s", inject: func(c testCluster, i int) func() {
		id := anyWorker(i)
		c.disconnect(id)
		time.Sleep(15 * time.Second)
		c.reconnect(id)
		return nil
	}, drops: true}
)

// anyWorker is worker-1 (p0's leader), worker-2 (its last stage), worker-3, worker-4
// (p1's) in turn.
func anyWorker(iteration int) string { return fmt.Sprintf("worker-%d", iteration%4+1) }

// pipelineWorker is the worker at stage (0 or 1) of pipeline p0 on even iterations and
// p1 on odd ones, in the layout worker-1, worker-2 (p0), worker-3, worker-4 (p1).
func pipelineWorker(iteration, stage int) string {
	return []string{"worker-1", "worker-2", "worker-3", "worker-4"}[2*(iteration%2)+stage]
}
