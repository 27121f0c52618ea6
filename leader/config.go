package leader

import (
	"fmt"
	"log/slog"
	"time"
)

// ServerConfig configures a Server. Zero values take the documented defaults.
type ServerConfig struct {
	// NodeID names the node in the cluster; Status reports it. Default: empty.
	NodeID string
	// Incarnation changes every time the node process starts; Status reports it.
	// Default: 0.
	Incarnation uint64
	// Model is the identity of the served model. Status reports it, and a
	// GenerateRequest naming another model is refused with ErrWrongModel. Default: empty,
	// which accepts requests for any model.
	Model string
	// FirstLayer and EndLayer are the leader's own layers, the half-open range
	// [FirstLayer, EndLayer); Status reports them. Default: 0, 0.
	FirstLayer, EndLayer int
	// TLS is the server's certificate and, for mutual TLS, the clients' CA. Default: off.
	TLS TLS
	// HealthInterval is how often the engine's Ready is polled for the gRPC health
	// service. Default 250 ms.
	HealthInterval time.Duration
	// PingInterval is how long a connection may go without a frame from the client
	// before the server pings it, and PingTimeout how long it waits for the answer
	// before closing the connection (which cancels its requests and frees their blocks):
	// a client that vanished is noticed within about their sum. Defaults 1 s and 1 s,
	// the least gRPC allows for the interval; a ping is a few bytes.
	PingInterval, PingTimeout time.Duration
	// HandshakeTimeout bounds a new connection's handshake (TLS and HTTP/2 preface), so
	// a peer that connects and sends nothing, or garbage, is dropped. Default 10 s.
	HandshakeTimeout time.Duration
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultServerConfig returns the defaults.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		HealthInterval:   250 * time.Millisecond,
		PingInterval:     time.Second,
		PingTimeout:      time.Second,
		HandshakeTimeout: 10 * time.Second,
		Logger:           slog.Default(),
	}
}

// validate fills zero fields with their defaults and rejects unusable ones.
func (c *ServerConfig) validate() error {
	d := DefaultServerConfig()
	switch {
	case c.FirstLayer < 0 || c.EndLayer < c.FirstLayer:
		return fmt.Errorf("%w: layer range [%d, %d)", ErrConfig, c.FirstLayer, c.EndLayer)
	case c.HealthInterval < 0 || c.PingInterval < 0 || c.PingTimeout < 0 || c.HandshakeTimeout < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	fill(&c.HealthInterval, d.HealthInterval)
	fill(&c.PingInterval, d.PingInterval)
	fill(&c.PingTimeout, d.PingTimeout)
	fill(&c.HandshakeTimeout, d.HandshakeTimeout)
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return nil
}

// ClientConfig configures a Client. Zero values take the documented defaults.
type ClientConfig struct {
	// Model, when set, is the model identity the caller expects: Dial fails with
	// ErrWrongModel against a leader serving another, and every request names it so a
	// leader restarted with other weights refuses it. Default: empty, no check.
	Model string
	// TLS is the CA that verifies the server and, for mutual TLS, the client's own
	// certificate. Default: off.
	TLS TLS
	// Heartbeat is how often the leader is asked to show it is alive on a stream that
	// has nothing else to send (a request waiting for admission, a long prefill).
	// Default 500 ms.
	Heartbeat time.Duration
	// DeadAfter is how long a stream may go without any message (token, heartbeat or
	// response header) before the client gives up on the leader and ends the request
	// with ErrBroken. It bounds how late a leader that fell silent without closing the
	// connection (a hung process, a dropped network) is noticed. Must exceed Heartbeat.
	// Default 2 s.
	DeadAfter time.Duration
	// PingInterval and PingTimeout are the gRPC keepalive of the connection when no
	// stream is open: ping after PingInterval idle, close after PingTimeout without an
	// answer. gRPC raises intervals below 10 s to 10 s, which is why streams rely on
	// Heartbeat and DeadAfter instead. Defaults 10 s and 2 s.
	PingInterval, PingTimeout time.Duration
	// MaxReconnectDelay bounds the pause between attempts to reconnect to a leader whose
	// connection dropped (gRPC backs off exponentially from 100 ms up to it), so a leader
	// restarted at the same address is found again within about this long. Default 1 s.
	MaxReconnectDelay time.Duration
}

// DefaultClientConfig returns the defaults.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		Heartbeat:         500 * time.Millisecond,
		DeadAfter:         2 * time.Second,
		PingInterval:      10 * time.Second,
		PingTimeout:       2 * time.Second,
		MaxReconnectDelay: time.Second,
	}
}

// validate fills zero fields with their defaults and rejects unusable ones.
func (c *ClientConfig) validate() error {
	d := DefaultClientConfig()
	if c.Heartbeat < 0 || c.DeadAfter < 0 || c.PingInterval < 0 || c.PingTimeout < 0 || c.MaxReconnectDelay < 0 {
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	fill(&c.Heartbeat, d.Heartbeat)
	fill(&c.DeadAfter, d.DeadAfter)
	fill(&c.PingInterval, d.PingInterval)
	fill(&c.PingTimeout, d.PingTimeout)
	fill(&c.MaxReconnectDelay, d.MaxReconnectDelay)
	if c.DeadAfter <= c.Heartbeat {
		return fmt.Errorf("%w: DeadAfter %v must exceed Heartbeat %v", ErrConfig, c.DeadAfter, c.Heartbeat)
	}
	if c.Heartbeat > time.Duration(maxHeartbeatMS)*time.Millisecond {
		return fmt.Errorf("%w: Heartbeat %v above %d ms", ErrConfig, c.Heartbeat, maxHeartbeatMS)
	}
	return nil
}

func fill(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}
