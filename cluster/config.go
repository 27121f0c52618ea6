package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"time"
)

// DefaultPort is the gossip port (UDP and TCP) of DefaultConfig, and the port assumed for
// a seed given without one.
const DefaultPort = 7946

// Config configures a Member. Start from DefaultConfig (a LAN) or LocalConfig (one
// machine, tests); a zero duration takes DefaultConfig's value.
type Config struct {
	// BindAddr is the address gossip listens on, UDP and TCP. Default "0.0.0.0".
	BindAddr string
	// BindPort is the gossip port; 0 picks a free one (read it back with Member.Addr).
	// DefaultConfig: DefaultPort.
	BindPort int
	// AdvertiseAddr is the IP other nodes reach this one at. Default "": BindAddr, or
	// when that is 0.0.0.0 the first private IP of the host.
	AdvertiseAddr string

	// Seeds are nodes to join: "host:port" or "host" (port DefaultPort), where host is
	// an IP or a DNS name; every name resolves to all of its addresses (on Kubernetes, a
	// headless service's name gives every pod). Join retries until one answers. Seed
	// addresses that are this node itself are skipped; a node with no seeds starts a
	// cluster, and so does one whose seeds include itself when no other seed answers
	// (the rejoin loop merges the others in when they come up). Default none.
	Seeds []string
	// RejoinInterval: while running, the seeds are resolved again this often and the
	// addresses not yet members are joined, which merges clusters that formed apart
	// (nodes started at once, a healed partition). Default 30 s; negative disables.
	RejoinInterval time.Duration

	// SecretKey encrypts and authenticates all gossip with AES-GCM when set; it must be
	// 16, 24 or 32 bytes (AES-128/192/256), and every node of the cluster needs the same
	// key: a node with another key, or none, cannot join, and nodes without one cannot
	// talk to nodes with one. Default none (plaintext).
	SecretKey []byte

	// Accept, if set, is asked about every other node before it enters this node's view
	// (for example: does it serve the same model?). A non-nil error refuses the node,
	// logged once per node at warn level with the error; a seed cluster holding a
	// refused node makes Join fail with ErrRefused. Give every node the same rule: a
	// node without it that joins a cluster whose nodes refuse it sees them while they
	// do not see it. Called from memberlist's goroutines, possibly concurrently; it must
	// be fast and must not call the Member.
	Accept func(peer Meta) error

	// Logger receives this package's logs, and memberlist's own log lines at debug
	// level. Default slog.Default().
	Logger *slog.Logger

	// ProbeInterval is how often a node probes a random other node; with ProbeTimeout
	// and SuspicionMult it sets how fast a dead node is noticed. Default 1 s.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack (about the 99th percentile of
	// the round trip). Default 500 ms.
	ProbeTimeout time.Duration
	// SuspicionMult: a suspected node that does not refute is declared dead after
	// SuspicionMult × max(1, log10(nodes)) × ProbeInterval when other nodes confirm the
	// suspicion, up to 6 times that when none do. Default 4.
	SuspicionMult int
	// GossipInterval is how often queued broadcasts (joins, updates, deaths) are sent to
	// 3 random nodes. Default 200 ms.
	GossipInterval time.Duration
	// PushPullInterval is how often a full state exchange with a random node runs (the
	// anti-entropy that repairs lost gossip). Default 30 s.
	PushPullInterval time.Duration
	// StreamTimeout bounds one TCP exchange (join, push/pull, leave notice or ack) and
	// how long Leave waits for the acks of its notices. Default 10 s.
	StreamTimeout time.Duration
}

// DefaultConfig returns settings for a LAN: memberlist's DefaultLANConfig timings on
// port DefaultPort of every interface. A crashed node is reported Dead by all others in
// about 6 s (5.6 to 6.6 s measured with five nodes: TestDeadDetectionLAN).
func DefaultConfig() Config {
	return Config{
		BindAddr:         "0.0.0.0",
		BindPort:         DefaultPort,
		RejoinInterval:   30 * time.Second,
		ProbeInterval:    time.Second,
		ProbeTimeout:     500 * time.Millisecond,
		SuspicionMult:    4,
		GossipInterval:   200 * time.Millisecond,
		PushPullInterval: 30 * time.Second,
		StreamTimeout:    10 * time.Second,
	}
}

// LocalConfig returns fast settings for nodes on one machine (tests, a laptop): 127.0.0.1,
// a free port, probes every 200 ms (150 ms timeout), suspicion for 3 probe intervals,
// gossip every 50 ms, push/pull every second; a crashed node is reported Dead by all
// others in about 1 s (0.8 to 1.3 s measured with five nodes, up to 1.8 s under load).
func LocalConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.RejoinInterval = 2 * time.Second
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 150 * time.Millisecond
	c.SuspicionMult = 3
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = time.Second
	c.StreamTimeout = time.Second
	return c
}

// validate fills zero values from DefaultConfig and rejects bad ones.
func (c *Config) validate() error {
	d := DefaultConfig()
	if c.BindAddr == "" {
		c.BindAddr = d.BindAddr
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return fmt.Errorf("%w: BindPort %d", ErrBadConfig, c.BindPort)
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("%w: SecretKey is %d bytes, want 16, 24 or 32", ErrBadConfig, len(c.SecretKey))
	}
	for _, s := range c.Seeds {
		if _, _, err := splitSeed(s); err != nil {
			return err
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"RejoinInterval", &c.RejoinInterval, d.RejoinInterval},
		{"ProbeInterval", &c.ProbeInterval, d.ProbeInterval},
		{"ProbeTimeout", &c.ProbeTimeout, d.ProbeTimeout},
		{"GossipInterval", &c.GossipInterval, d.GossipInterval},
		{"PushPullInterval", &c.PushPullInterval, d.PushPullInterval},
		{"StreamTimeout", &c.StreamTimeout, d.StreamTimeout},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 && f.name != "RejoinInterval" {
			return fmt.Errorf("%w: %s %v", ErrBadConfig, f.name, *f.v)
		}
	}
	if c.SuspicionMult == 0 {
		c.SuspicionMult = d.SuspicionMult
	}
	if c.SuspicionMult < 0 {
		return fmt.Errorf("%w: SuspicionMult %d", ErrBadConfig, c.SuspicionMult)
	}
	if c.ProbeTimeout > c.ProbeInterval {
		return fmt.Errorf("%w: ProbeTimeout %v longer than ProbeInterval %v", ErrBadConfig, c.ProbeTimeout, c.ProbeInterval)
	}
	return nil
}

// memberlistLogger returns a standard logger whose lines ("[WARN] memberlist: ...") go to
// l at debug level, the bracketed level kept as the attribute "ml_level".
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	if !w.l.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	for line := range bytes.Lines(p) {
		s := strings.TrimSpace(string(line))
		level := ""
		if strings.HasPrefix(s, "[") {
			if i := strings.IndexByte(s, ']'); i > 0 {
				level, s = s[1:i], strings.TrimSpace(s[i+1:])
			}
		}
		s = strings.TrimPrefix(s, "memberlist: ")
		w.l.Debug("memberlist: "+s, "ml_level", level)
	}
	return len(p), nil
}

var _ io.Writer = slogWriter{}
