package kvindex

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerConfig configures the embedded NATS server that a router starts by default.
// Zero fields take the defaults.
type ServerConfig struct {
	// Host is the address to listen on. Default "127.0.0.1"; workers on other machines
	// need "0.0.0.0" or the host's address.
	Host string
	// Port to listen on. 0 (default) or -1 picks a free port; the URL says which.
	Port int
	// DontListen, when set, opens no TCP port: only Server.Connect reaches the server,
	// within this process (a one-process cluster). The URL is then empty.
	DontListen bool
	// User and Password, when set (both), are required of every client. Token, when set,
	// is required instead; setting both a user and a token is an error. Default: no
	// authentication.
	User, Password, Token string
	// MaxPayload is the largest message in bytes. Default 8 MiB (NATS' own default is
	// 1 MiB); snapshots are split to fit whatever the server allows.
	MaxPayload int32
	// Name of the server in its logs and INFO. Default "kvmesh".
	Name string
	// ReadyTimeout bounds the wait for the server to accept connections. Default 10 s.
	ReadyTimeout time.Duration
	// Logger receives the server's notices and errors (debug and trace are off). Default:
	// the server logs nothing.
	Logger *slog.Logger
}

func (c ServerConfig) withDefaults() (ServerConfig, error) {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = server.RANDOM_PORT
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = 8 << 20
	}
	if c.Name == "" {
		c.Name = "kvmesh"
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	switch {
	case c.Port < -1 || c.Port > 65535:
		return c, fmt.Errorf("%w: port %d", ErrBadConfig, c.Port)
	case (c.User == "") != (c.Password == ""):
		return c, fmt.Errorf("%w: user and password go together", ErrBadConfig)
	case c.User != "" && c.Token != "":
		return c, fmt.Errorf("%w: both a user and a token", ErrBadConfig)
	case c.MaxPayload < 0 || c.ReadyTimeout < 0:
		return c, fmt.Errorf("%w: negative max payload or timeout", ErrBadConfig)
	}
	return c, nil
}

// Server is an embedded NATS server. Close shuts it down; it also shuts down when the
// context given to StartServer is done.
type Server struct {
	ns   *server.Server
	url  string
	stop chan struct{}
	once sync.Once
}

// StartServer starts an embedded NATS server and waits until it accepts connections.
// It returns the server and the URL clients connect to (without credentials). ctx bounds
// the start and the server's life.
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, string, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, "", err
	}
	opts := &server.Options{
		ServerName:    cfg.Name,
		Host:          cfg.Host,
		Port:          cfg.Port,
		Username:      cfg.User,
		Password:      cfg.Password,
		Authorization: cfg.Token,
		MaxPayload:    cfg.MaxPayload,
		DontListen:    cfg.DontListen,
		NoSigs:        true, // the process owns its signals
		NoLog:         cfg.Logger == nil,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("kvindex: nats server: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLogger(slogAdapter{cfg.Logger}, false, false)
	}
	go ns.Start()
	deadline := time.Now().Add(cfg.ReadyTimeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			ns.Shutdown()
			ns.WaitForShutdown()
			if ctx.Err() != nil {
				return nil, "", fmt.Errorf("kvindex: nats server start: %w", ctx.Err())
			}
			return nil, "", fmt.Errorf("kvindex: nats server not ready after %v", cfg.ReadyTimeout)
		}
	}
	s := &Server{ns: ns, stop: make(chan struct{})}
	if !cfg.DontListen {
		s.url = ns.ClientURL()
	}
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.stop:
		}
	}()
	return s, s.url, nil
}

// URL is the address clients connect to, as StartServer returned it ("" with
// DontListen).
func (s *Server) URL() string { return s.url }

// Connect opens an in-process connection to the server (no socket), as Connect does
// over TCP; it works with and without DontListen.
func (s *Server) Connect(cfg ClientConfig) (*nats.Conn, error) {
	nc, err := nats.Connect("", append(cfg.options(), nats.InProcessServer(s.ns))...)
	if err != nil {
		return nil, fmt.Errorf("kvindex: connect in process: %w", err)
	}
	return nc, nil
}

// Close shuts the server down and waits until it has stopped. It may be called more
// than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.stop)
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
}

// slogAdapter passes the server's logs to a slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }

var _ server.Logger = slogAdapter{}

// ClientConfig is how a node connects to NATS. Zero fields take the defaults.
type ClientConfig struct {
	// User and Password, or Token: the server's credentials, if it asks for any.
	User, Password, Token string
	// Name of the connection in the server's monitoring. Default "kvmesh".
	Name string
	// ConnectTimeout bounds one dial. Default 5 s.
	ConnectTimeout time.Duration
}

// Connect dials the NATS server at url with cfg's credentials. The connection reconnects
// for ever once connected (events lost meanwhile show up as sequence gaps and are
// repaired by snapshots); the first dial fails if the server is not up.
func Connect(url string, cfg ClientConfig) (*nats.Conn, error) {
	nc, err := nats.Connect(url, cfg.options()...)
	if err != nil {
		return nil, fmt.Errorf("kvindex: connect %s: %w", url, err)
	}
	return nc, nil
}

// options are the nats.go options for cfg, with the defaults filled in.
func (cfg ClientConfig) options() []nats.Option {
	if cfg.Name == "" {
		cfg.Name = "kvmesh"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	return opts
}
