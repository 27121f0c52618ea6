package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestSplitSeed(t *testing.T) {
	for _, tc := range []struct {
		seed string
		host string
		port int
		ok   bool
	}{
		{"10.0.0.1:7000", "10.0.0.1", 7000, true},
		{"workers.kvmesh.svc", "workers.kvmesh.svc", DefaultPort, true},
		{"[::1]:80", "::1", 80, true},
		{"[::1]", "::1", DefaultPort, true},
		{"host:0", "", 0, false},
		{"host:99999", "", 0, false},
		{":80", "", 0, false},
		{"", "", 0, false},
	} {
		host, port, err := splitSeed(tc.seed)
		if (err == nil) != tc.ok || host != tc.host || port != tc.port {
			t.Errorf("splitSeed(%q) = %q, %d, %v", tc.seed, host, port, err)
		}
		if err != nil && !errors.Is(err, ErrBadConfig) {
			t.Errorf("splitSeed(%q): %v is not ErrBadConfig", tc.seed, err)
		}
	}
}

func TestDNSSeeds(t *testing.T) {
	a := startNode(t, workerMeta("a"), nil, nil)
	_, port, _ := net.SplitHostPort(a.Addr())

	// A name that resolves.
	b := startNode(t, workerMeta("b"), []string{"localhost:" + port}, nil)
	for _, n := range []*Member{a, b} {
		waitFor(t, 5*time.Second, "joined by name", func() error { return seesExactly(n, "a", "b") })
	}

	// A name that does not resolve: retried, then a clear error when ctx ends.
	logger, lines := newLogCapture()
	start := time.Now()
	_, err := tryNode(t, workerMeta("c"), []string{"no-such-seed.invalid:7946"}, func(c *Config) { c.Logger = logger }, time.Second)
	if !errors.Is(err, ErrNoSeed) || !strings.Contains(err.Error(), "no-such-seed.invalid") {
		t.Fatalf("Join = %v, want ErrNoSeed naming the seed", err)
	}
	retries := countLines(lines(), "no seed answered, retrying")
	if retries < 2 {
		t.Errorf("%d retries logged, want at least 2", retries)
	}
	t.Logf("unresolvable seed: %d attempts in %v: %v", retries, time.Since(start).Round(time.Millisecond), err)

	// A seed list that is only this node starts a cluster at once.
	free := freePort(t)
	self := startNode(t, workerMeta("self"), []string{"127.0.0.1:" + strconv.Itoa(free)}, func(c *Config) { c.BindPort = free })
	if err := seesExactly(self, "self"); err != nil {
		t.Error(err)
	}
}

// TestRejoin: a node whose seeds are itself and a node not up yet starts alone; the
// rejoin loop merges the two once the other comes up.
func TestRejoin(t *testing.T) {
	pa, pb := freePort(t), freePort(t)
	seeds := []string{"127.0.0.1:" + strconv.Itoa(pa), "127.0.0.1:" + strconv.Itoa(pb)}
	fast := func(port int) func(*Config) {
		return func(c *Config) { c.BindPort = port; c.RejoinInterval = 200 * time.Millisecond }
	}
	b := startNode(t, workerMeta("b"), seeds, fast(pb))
	if err := seesExactly(b, "b"); err != nil {
		t.Fatal(err)
	}
	a := startNode(t, workerMeta("a"), nil, fast(pa))
	for _, n := range []*Member{a, b} {
		waitFor(t, 5*time.Second, "merged by rejoin", func() error { return seesExactly(n, "a", "b") })
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func sameModel(own string) func(Meta) error {
	return func(p Meta) error {
		if p.Model != own {
			return fmt.Errorf("serves model %q, this node %q", p.Model, own)
		}
		return nil
	}
}

// TestAccept: a node of another model is refused at once with a clear error, and the
// cluster it tried to join is unchanged.
func TestAccept(t *testing.T) {
	logger, lines := newLogCapture()
	a := startNode(t, workerMeta("a"), nil, func(c *Config) { c.Accept = sameModel("ab12"); c.Logger = logger })
	other := workerMeta("other")
	other.Model = "ffff"
	start := time.Now()
	_, err := tryNode(t, other, []string{a.Addr()}, func(c *Config) { c.Accept = sameModel("ffff") }, 3*time.Second)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `"ab12"`) {
		t.Fatalf("Join = %v, want ErrRefused naming the model", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v, want at once", d)
	}
	t.Logf("refused: %v", err)
	if err := seesExactly(a, "a"); err != nil {
		t.Error(err)
	}
	waitFor(t, 5*time.Second, "the seed logs its refusal too", func() error {
		if countLines(lines(), "refusing node", "ffff") == 0 {
			return fmt.Errorf("no warning about the refused node in %q", lines())
		}
		return nil
	})
}

// rawDelegate is a memberlist delegate that gossips arbitrary metadata.
type rawDelegate struct{ meta []byte }

func (d rawDelegate) NodeMeta(int) []byte             { return d.meta }
func (d rawDelegate) NotifyMsg([]byte)                {}
func (d rawDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d rawDelegate) LocalState(bool) []byte          { return nil }
func (d rawDelegate) MergeRemoteState([]byte, bool)   {}

// TestBadMetaPeer: a memberlist node gossiping metadata that does not decode (or a name
// that does not match it) never enters the view, and the refusal is logged once.
func TestBadMetaPeer(t *testing.T) {
	good, _ := encodeMeta(Meta{ID: "x", Incarnation: 5, Role: RoleWorker, State: StateReady})
	for _, tc := range []struct {
		name, node string
		meta       []byte
	}{
		{"garbage meta", "junk#1", []byte{1, 0xff, 0xff}},
		{"no meta", "empty#1", nil},
		{"name mismatch", "x#6", good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger, lines := newLogCapture()
			a := startNode(t, workerMeta("a"), nil, func(c *Config) { c.Logger = logger })
			mlc := memberlist.DefaultLocalConfig()
			mlc.Name, mlc.BindAddr, mlc.BindPort = tc.node, "127.0.0.1", 0
			mlc.ProbeInterval, mlc.GossipInterval, mlc.PushPullInterval = 100*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond
			mlc.Delegate = rawDelegate{tc.meta}
			mlc.DelegateProtocolVersion, mlc.DelegateProtocolMin, mlc.DelegateProtocolMax = metaVersion, metaVersion, metaVersion
			mlc.Logger = memberlistLogger(testLogger())
			raw, err := memberlist.Create(mlc)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Shutdown()
			// a answers the state exchange, then refuses to merge the raw node's state;
			// the raw node, knowing a now, keeps gossiping its alive messages to a,
			// which vetoes every one.
			if _, err := raw.Join([]string{a.Addr()}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "refusal logged", func() error {
				if countLines(lines(), "refusing node", tc.node) == 0 {
					return fmt.Errorf("no refusal of %s logged", tc.node)
				}
				return nil
			})
			waitFor(t, 5*time.Second, "raw node's alive messages vetoed", func() error {
				if n := countLines(lines(), "ignoring alive message", tc.node); n < 2 {
					return fmt.Errorf("%d alive messages vetoed", n)
				}
				return nil
			})
			if err := seesExactly(a, "a"); err != nil {
				t.Error(err)
			}
			if n := countLines(lines(), "refusing node", tc.node); n != 1 {
				t.Errorf("refusal logged %d times, want once", n)
			}
		})
	}
}
