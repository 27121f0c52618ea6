package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testCluster is what the shared helpers below drive: the cluster of processes (Cluster)
// and the container cluster of the chaos suite (composeCluster, build tag chaos).
type testCluster interface {
	// routerURLs are the base URLs of the routers, router-1 first.
	routerURLs() []string
	// kill stops a node at once (SIGKILL, docker kill); restart starts it again as it was.
	kill(id string)
	restart(id string)
	// pause freezes a node (SIGSTOP, docker pause); unpause thaws it.
	pause(id string)
	unpause(id string)
	// disconnect cuts a node off the network; reconnect joins it again at the same
	// address. A cluster that cannot do this skips the test.
	disconnect(id string)
	reconnect(id string)
	// leaders is the pipeline leaders the cluster routes to at full capacity.
	leaders() []string
}

// view asks the router at url for its members, as members does, but answers nil when the
// router does not answer (it may be down: the chaos suite kills routers).
func view(url string) []member {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url + "/cluster")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st struct{ Members []member }
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return st.Members
}

// atFullCapacity reports whether every router routes every leader of c and every
// leader's KV blocks are all free again (cached blocks count as free: they are
// evictable), and if not, why.
func atFullCapacity(c testCluster) (bool, string) {
	want := c.leaders()
	for _, url := range c.routerURLs() {
		ms := view(url)
		var routed []string
		for _, m := range ms {
			if m.Routed {
				routed = append(routed, m.ID)
				if m.FreeBlocks != m.TotalBlocks {
					return false, fmt.Sprintf("%s: leader %s has %d/%d blocks free", url, m.ID, m.FreeBlocks, m.TotalBlocks)
				}
			}
		}
		sort.Strings(routed)
		if !slices.Equal(routed, want) {
			return false, fmt.Sprintf("%s routes %v, want %v", url, routed, want)
		}
	}
	return true, ""
}

// waitFullCapacity waits up to limit for atFullCapacity and returns how long it took.
func waitFullCapacity(t *testing.T, c testCluster, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	why := ""
	for {
		ok, w := atFullCapacity(c)
		if ok {
			return time.Since(start)
		}
		why = w
		if time.Since(start) > limit {
			t.Fatalf("the cluster did not return to full capacity within %v: %s", limit, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// loadResult is what a load of streaming requests saw.
type loadResult struct {
	Requests  int      // requests of the load
	Retries   int      // attempts after a retryable error
	Lost      int      // requests that never completed (or failed without a retryable error)
	Differing int      // completed requests whose text differs from the reference
	InFlight  int      // requests still streaming when the fault was injected
	Errors    []string // the errors seen, retried or not
}

// maxAttempts is how often a client of runLoad tries a request, across the routers.
const maxAttempts = 4

// runLoad sends n streaming requests of cases (request i: cases[i%len]) at once, request i
// to router i mod the routers first, and calls fault (when not nil) once every stream
// has received its first chunk. A client whose request fails with a retryable error
// (stream.retryable) tries again from the start on the next router, up to maxAttempts
// times, as an OpenAI client with retries does; the text it finally receives must equal
// the reference: nothing missing, nothing repeated.
func runLoad(t *testing.T, urls []string, cases []refCase, n int, fault func()) loadResult {
	t.Helper()
	res := loadResult{Requests: n}
	var mu sync.Mutex // protects res
	firsts := make([]chan struct{}, n)
	var finished atomic.Int64 // requests done, for InFlight
	var wg sync.WaitGroup
	for i := range n {
		firsts[i] = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			rc := cases[i%len(cases)]
			first := firsts[i]
			for attempt := range maxAttempts {
				if attempt > 0 {
					time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
				}
				s := streamCompletion(context.Background(), urls[(i+attempt)%len(urls)], rc, first)
				if s.chunks > 0 {
					first = nil // closed by streamCompletion
				}
				mu.Lock()
				switch {
				case s.err == nil && s.text == rc.Text():
				case s.err == nil:
					res.Differing++
					res.Errors = append(res.Errors, fmt.Sprintf("request %d (prompt %q): got %q, want %q", i, rc.Prompt, s.text, rc.Text()))
				case s.retryable && attempt+1 < maxAttempts:
					res.Retries++
					res.Errors = append(res.Errors, fmt.Sprintf("request %d attempt %d (retried): %v", i, attempt+1, s.err))
					mu.Unlock()
					continue
				default:
					res.Lost++
					res.Errors = append(res.Errors, fmt.Sprintf("request %d attempt %d (lost, retryable %v): %v", i, attempt+1, s.retryable, s.err))
				}
				mu.Unlock()
				break
			}
			if first != nil {
				close(first) // never started: do not hold the fault back
			}
		}()
	}
	for _, f := range firsts {
		<-f
	}
	if fault != nil {
		res.InFlight = n - int(finished.Load())
		fault()
	}
	wg.Wait()
	return res
}

// check reports a load's lost and differing requests as test errors.
func (r loadResult) check(t *testing.T, what string) {
	t.Helper()
	if r.Lost > 0 || r.Differing > 0 {
		t.Errorf("%s: %d of %d requests lost, %d differ from the reference:\n%s", what, r.Lost, r.Requests, r.Differing, tail(fmt.Sprint(r.Errors), 4000))
	}
}

// The process cluster as a testCluster.
var _ testCluster = (*Cluster)(nil)

func (c *Cluster) routerURLs() []string { return []string{c.url} }

func (c *Cluster) leaders() []string {
	var ids []string
	for _, w := range c.workers {
		if w.layers != "" && w.layers[0] == '0' && w.layers[1] == ':' {
			ids = append(ids, w.id)
		}
	}
	sort.Strings(ids)
	return ids
}

// restart starts a killed worker again with its layer range and pipeline.
func (c *Cluster) restart(id string) { c.startWorker(c.workers[id]) }

func (c *Cluster) signal(id string, sig syscall.Signal) {
	c.mu.Lock()
	cmd := c.procs[id]
	c.mu.Unlock()
	if cmd == nil {
		c.t.Fatalf("no process %s", id)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("%v to %s: %v", sig, id, err)
	}
}

func (c *Cluster) pause(id string)   { c.signal(id, syscall.SIGSTOP) }
func (c *Cluster) unpause(id string) { c.signal(id, syscall.SIGCONT) }
func (c *Cluster) disconnect(id string) {
	c.t.Skip("processes on loopback cannot be cut off the network")
}
func (c *Cluster) reconnect(id string) {}
