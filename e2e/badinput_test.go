package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/internal/garbage"
	"github.com/kvmesh/kvmesh/model/ckpt"
	pb "github.com/kvmesh/kvmesh/proto/kvmesh/v1"
)

// member is one node as the router's GET /cluster lists it.
type member struct {
	ID       string `json:"id"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Layers   string `json:"layers"`
	Pipeline string `json:"pipeline"`
	GRPC     string `json:"grpc"`
	Routed   bool   `json:"routed"`
	// FreeBlocks and TotalBlocks are a leader's KV blocks (cached ones count as free).
	FreeBlocks  int `json:"free_blocks"`
	TotalBlocks int `json:"total_blocks"`
}

// members lists the members the router at url sees, by ID.
func members(t *testing.T, url string) map[string]member {
	t.Helper()
	resp, err := http.Get(url + "/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Members []member }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	out := map[string]member{}
	for _, m := range st.Members {
		out[m.ID] = m
	}
	return out
}

// checkReference runs every reference case through the routers at urls, in turn, and
// checks each output token for token.
func checkReference(t *testing.T, urls ...string) {
	t.Helper()
	for i, rc := range loadReference(t) {
		url := urls[i%len(urls)]
		s := streamCompletion(context.Background(), url, rc, nil)
		if s.err != nil {
			t.Fatalf("%s: %v", url, s.err)
		}
		if s.text != rc.Text() {
			t.Errorf("%s, prompt %q seed %d:\n got %q\nwant %q", url, rc.Prompt, rc.Seed, s.text, rc.Text())
		}
	}
}

// otherModel writes a checkpoint of stories260K's shape and format with other weights:
// another model identity, which a cluster of stories260K must refuse.
func otherModel(t *testing.T) string {
	t.Helper()
	ck, err := ckpt.Open("../models/stories260K.bin")
	if err != nil {
		t.Fatal(err)
	}
	cfg := ck.Config
	ck.Close()
	path := filepath.Join(t.TempDir(), "other.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ckpt.WriteSynthetic(f, cfg, 7); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRefusedWorkers starts, beside a serving pipeline, a worker with another model's
// checkpoint, one whose --layers overlap a live worker of its pipeline, and one whose
// --layers do not fit the memory it offers. Each exits with status 1 saying why on
// stderr; the cluster logs why it refused another model; none joins a pipeline, and the
// cluster keeps serving the reference exactly.
func TestRefusedWorkers(t *testing.T) {
	c := startCluster(t, 1, worker{"worker-1", "0:3", "p0"}, worker{"worker-2", "3:5", "p0"})
	for _, tc := range []struct {
		name, id string
		args     []string
		stderr   []string // what the refused worker says
		logs     []string // what the router's log says
	}{
		{"another model", "worker-7", []string{"--model", otherModel(t)},
			[]string{"peer refused", "another model"}, []string{`msg="cluster: refusing node"`, "peer=worker-7#", "another model"}},
		{"overlapping range", "worker-8", []string{"--layers", "2:4", "--pipeline", "p0"},
			[]string{"layer range refused", `overlaps worker "worker-1" (layers 0:3) in pipeline "p0"`}, nil},
		{"range larger than its memory", "worker-9", []string{"--layers", "0:5", "--pipeline", "p1", "--memory", "1"},
			[]string{"layer range refused", "worker \"worker-9\" offers 1048576 bytes"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--id", tc.id, "--model", "../models/stories260K.bin", "--seeds", c.gossip, "--nats", c.nats}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "node"), args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; stdout %q\nstderr:\n%s", err, out, stderr.String())
			}
			last := lastLine(stderr.String())
			for _, want := range tc.stderr {
				if !strings.Contains(last, want) {
					t.Errorf("its last line on stderr does not say %q:\n%s", want, last)
				}
			}
			if len(tc.logs) > 0 {
				waitFor(t, "the router's log of the refusal", 5*time.Second, func() bool {
					b, _ := os.ReadFile(filepath.Join(c.dir, "router-1.log"))
					for _, l := range strings.Split(string(b), "\n") {
						if containsAll(l, tc.logs) {
							return true
						}
					}
					return false
				})
			}
			// It left (or never entered) the view, and the pipeline is as it was.
			waitFor(t, tc.id+" gone from the view", 5*time.Second, func() bool {
				_, ok := members(t, c.url)[tc.id]
				return !ok
			})
			if r := c.routed(); len(r) != 1 || r[0] != "worker-1" {
				t.Errorf("routed leaders %v, want [worker-1]", r)
			}
		})
	}
	checkReference(t, c.url)
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

var gossipRE = regexp.MustCompile(`msg="node serving".* gossip=(\S+)`)

// gossipAddr reads a worker's gossip address from its log.
func (c *Cluster) gossipAddr(id string) string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, id+".log"))
	if err != nil {
		c.t.Fatal(err)
	}
	m := gossipRE.FindSubmatch(b)
	if m == nil {
		c.t.Fatalf("no gossip address in %s's log", id)
	}
	return string(m[1])
}

// alive reports whether process id still runs (not exited, not a zombie).
func (c *Cluster) alive(id string) bool {
	c.mu.Lock()
	cmd := c.procs[id]
	c.mu.Unlock()
	if cmd == nil || cmd.Process.Signal(syscall.Signal(0)) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) // no /proc: trust the signal
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(stat)
	return !strings.HasPrefix(s[strings.LastIndexByte(s, ')')+1:], " Z")
}

// sendStreams writes every payload on a TCP connection of its own to addr, all at once,
// and reads until the node hangs up or two seconds pass.
func sendStreams(t *testing.T, addr string, payloads [][]byte) {
	var wg sync.WaitGroup
	for _, p := range payloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Errorf("dial %s: %v", addr, err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			conn.Write(p) // the node may hang up before reading it all
			io.Copy(io.Discard, conn)
		}()
	}
	wg.Wait()
}

// sendDatagrams writes every payload as one UDP datagram to addr.
func sendDatagrams(t *testing.T, addr string, payloads [][]byte) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, p := range payloads {
		conn.Write(p) // errors (ICMP refusals) do not matter
	}
}

// TestGarbageOnPorts throws garbage at every port of a running cluster: random bytes,
// half an HTTP/2 preface, and HTTP/2 connections sending junk frames and junk gRPC
// messages to the leader's and the stage's gRPC ports; random datagrams and streams, and
// memberlist messages gone wrong, to the gossip ports (UDP and TCP) of the router and
// both workers. Every process is still alive afterwards, the pipeline is still routed,
// and the reference still comes back exact.
func TestGarbageOnPorts(t *testing.T) {
	c := startCluster(t, 1, worker{"worker-1", "0:3", "p0"}, worker{"worker-2", "3:5", "p0"})
	ms := members(t, c.url)
	grpcPorts := map[string]string{
		ms["worker-1"].GRPC: "/" + pb.Leader_ServiceDesc.ServiceName + "/Generate",
		ms["worker-2"].GRPC: "/" + pb.Stage_ServiceDesc.ServiceName + "/Steps",
	}
	gossipPorts := []string{c.gossip, c.gossipAddr("worker-1"), c.gossipAddr("worker-2")}

	var wg sync.WaitGroup
	for addr, path := range grpcPorts {
		wg.Add(1)
		go func() { defer wg.Done(); sendStreams(t, addr, garbage.GRPC(1, path)) }()
	}
	for i, addr := range gossipPorts {
		wg.Add(2)
		go func() { defer wg.Done(); sendDatagrams(t, addr, garbage.Gossip(uint64(i))) }()
		go func() { defer wg.Done(); sendStreams(t, addr, garbage.Gossip(uint64(10+i))) }()
	}
	wg.Wait()

	for _, id := range []string{"router-1", "worker-1", "worker-2"} {
		if !c.alive(id) {
			t.Errorf("%s died of the garbage", id)
		}
	}
	waitFor(t, "all members in the view, the pipeline routed", 5*time.Second, func() bool {
		ms := members(t, c.url)
		return len(ms) == 3 && ms["worker-1"].Routed && ms["worker-2"].State == "ready"
	})
	checkReference(t, c.url)
}
