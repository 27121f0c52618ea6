package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvmesh/kvmesh/api"
	"github.com/kvmesh/kvmesh/cluster"
	"github.com/kvmesh/kvmesh/kvindex"
	"github.com/kvmesh/kvmesh/leader"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/model/tokenizer"
	"github.com/kvmesh/kvmesh/router"
)

// Config configures a router process.
type Config struct {
	// ID names the router in membership ("router-1"). Required.
	ID string
	// Model is the checkpoint (its identity and shape; the router runs no layers), and
	// Tokenizer its tokenizer. Required.
	Model, Tokenizer string
	// ModelName is the served model id. Default: the checkpoint's file name.
	ModelName string
	// HTTPAddr is the HTTP listen address. Default "127.0.0.1:8080".
	HTTPAddr string
	// Advertise is the host or IP others reach the HTTP API at, as gossiped. Default: the
	// listen host, or, when that is unspecified (0.0.0.0, ::), the IP membership
	// advertises (cluster.AdvertiseAddr).
	Advertise string
	// Gossip configures membership.
	Gossip cluster.Config
	// NATSURL is an external NATS server; empty embeds one listening on NATSListen.
	NATSURL string
	// NATSListen is the embedded server's address, host:port (port 0: any). Default
	// "127.0.0.1:4222".
	NATSListen string
	// NATS authenticates to the NATS server (and protects the embedded one).
	NATS kvindex.ClientConfig
	// BlockSize is the cluster's KV block size, for the prompt's block keys. Default 16.
	BlockSize int
	// TLS secures the gRPC connections to the leaders (mutual TLS with a certificate).
	// Default: off.
	TLS leader.TLS
	// RoundRobin turns KV-aware routing off (the baseline).
	RoundRobin bool
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Frontend is a running router process.
type Frontend struct {
	cfg     Config
	ck      *ckpt.Checkpoint
	member  *cluster.Member
	nats    *kvindex.Server // nil with an external server
	natsURL string
	nc      *nats.Conn
	sub     *kvindex.Subscriber
	router  *router.Router
	api     *api.Server
	http    *http.Server
	ln      net.Listener

	mu      sync.Mutex // protects leaders
	leaders map[string]*leaderConn

	stop chan struct{}
	done sync.WaitGroup
}

// leaderConn is a dialed leader and the incarnation it was dialed for.
type leaderConn struct {
	client      *leader.Client
	incarnation uint64
}

// Start brings a router up: it returns once the HTTP API listens.
func Start(ctx context.Context, cfg Config) (*Frontend, error) {
	if cfg.ID == "" || cfg.Model == "" || cfg.Tokenizer == "" {
		return nil, errors.New("frontend: an ID, a model and a tokenizer are required")
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if cfg.NATSListen == "" {
		cfg.NATSListen = "127.0.0.1:4222"
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 16
	}
	if cfg.ModelName == "" {
		cfg.ModelName = api.ModelName(cfg.Model)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	f := &Frontend{cfg: cfg, leaders: make(map[string]*leaderConn), stop: make(chan struct{})}
	if err := f.start(ctx); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

func (f *Frontend) start(ctx context.Context) error {
	cfg := f.cfg
	var err error
	if f.ck, err = ckpt.Open(cfg.Model); err != nil {
		return err
	}
	tok, err := tokenizer.Load(cfg.Tokenizer, f.ck.Config.Vocab)
	if err != nil {
		return err
	}
	identity := f.ck.Identity()

	f.natsURL = cfg.NATSURL
	if f.natsURL == "" {
		host, port, err := splitHostPort(cfg.NATSListen)
		if err != nil {
			return err
		}
		f.nats, f.natsURL, err = kvindex.StartServer(ctx, kvindex.ServerConfig{
			Host: host, Port: port, User: cfg.NATS.User, Password: cfg.NATS.Password, Token: cfg.NATS.Token, Logger: cfg.Logger,
		})
		if err != nil {
			return fmt.Errorf("frontend: embedded NATS: %w", err)
		}
	}
	if f.nc, err = kvindex.Connect(f.natsURL, cfg.NATS); err != nil {
		return fmt.Errorf("frontend: NATS: %w", err)
	}
	if f.sub, err = kvindex.NewSubscriber(f.nc, kvindex.SubscriberConfig{Model: identity, Logger: cfg.Logger}); err != nil {
		return err
	}
	f.router = router.New(router.Config{
		KeySeed: kvindex.Seed(identity, "", cfg.BlockSize), BlockSize: cfg.BlockSize,
		Picker: f.sub, RoundRobin: cfg.RoundRobin, Logger: cfg.Logger,
	})

	if f.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return fmt.Errorf("frontend: %w", err)
	}
	gc := cfg.Gossip
	if gc.Logger == nil {
		gc.Logger = cfg.Logger
	}
	gc.Accept = cluster.SameModel(identity)
	meta := cluster.Meta{ID: cfg.ID, Role: cluster.RoleRouter, HTTPAddr: cluster.AdvertiseAddr(f.ln.Addr(), cfg.Advertise, ""),
		Model: identity, State: cluster.StateReady}
	if f.member, err = cluster.Join(ctx, gc, meta); err != nil {
		return fmt.Errorf("frontend: joining the cluster: %w", err)
	}
	if self := f.member.Self(); self.HTTPAddr != cluster.AdvertiseAddr(f.ln.Addr(), cfg.Advertise, f.member.Addr()) {
		self.HTTPAddr = cluster.AdvertiseAddr(f.ln.Addr(), cfg.Advertise, f.member.Addr())
		if err := f.member.Update(self); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	ac := api.DefaultConfig()
	ac.Generator, ac.Tokenizer, ac.ModelName = f.router, tok, cfg.ModelName
	ac.ContextLen, ac.Registry, ac.Logger = f.ck.Config.SeqLen, reg, cfg.Logger
	ac.Ready = func() bool { return len(f.router.Leaders()) > 0 }
	if f.api, err = api.New(ac); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cluster", f.handleCluster)
	mux.Handle("/", f.api.Handler())
	f.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go f.http.Serve(f.ln)

	events, cancel := f.member.Subscribe()
	f.done.Add(1)
	go func() {
		defer f.done.Done()
		defer cancel()
		f.watch(events)
	}()
	cfg.Logger.Info("router serving", "id", cfg.ID, "url", f.URL(), "nats", f.natsURL, "gossip", f.member.Addr())
	return nil
}

// watch keeps the router's leaders and the prefix index in step with membership.
func (f *Frontend) watch(events <-chan cluster.Event) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			return
		case ev := <-events:
			m := ev.Meta
			if m.Role != cluster.RoleWorker {
				continue
			}
			switch ev.Kind {
			case cluster.KindDead, cluster.KindLeave:
				f.drop(m.ID)
			case cluster.KindRestart:
				f.drop(m.ID)
				f.consider(m)
			default:
				f.consider(m)
			}
		case <-tick.C:
			for _, m := range f.member.Members() {
				if m.Role == cluster.RoleWorker {
					f.consider(m)
				}
			}
		}
	}
}

// consider adds a ready leader to the router (dialing it the first time), updates its
// load, or drops one that stopped being a ready leader.
func (f *Frontend) consider(m cluster.Meta) {
	if m.First != 0 || m.Last == 0 || m.State != cluster.StateReady {
		f.drop(m.ID)
		return
	}
	f.mu.Lock()
	lc := f.leaders[m.ID]
	f.mu.Unlock()
	if lc != nil && lc.incarnation != m.Incarnation {
		f.drop(m.ID)
		lc = nil
	}
	if lc == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		lcfg := leader.DefaultClientConfig()
		lcfg.TLS, lcfg.Model = f.cfg.TLS, m.Model
		c, err := leader.Dial(ctx, m.GRPCAddr, lcfg)
		cancel()
		if err != nil {
			f.cfg.Logger.Warn("cannot reach a leader", "id", m.ID, "addr", m.GRPCAddr, "err", err)
			return
		}
		lc = &leaderConn{client: c, incarnation: m.Incarnation}
		f.mu.Lock()
		f.leaders[m.ID] = lc
		f.mu.Unlock()
		ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
		if err := f.sub.Sync(ctx, []string{m.ID}); err != nil {
			f.cfg.Logger.Warn("prefix snapshot failed; routing without it until events arrive", "id", m.ID, "err", err)
		}
		cancel()
		f.cfg.Logger.Info("pipeline serving", "leader", m.ID, "pipeline", m.Pipeline, "addr", m.GRPCAddr)
	}
	f.router.SetLeader(m.ID, lc.client, m.FreeBlocks)
}

func (f *Frontend) drop(id string) {
	f.mu.Lock()
	lc := f.leaders[id]
	delete(f.leaders, id)
	f.mu.Unlock()
	if lc == nil {
		return
	}
	f.router.RemoveLeader(id)
	f.sub.Drop(id)
	lc.client.Close()
	f.cfg.Logger.Info("pipeline left the router", "leader", id)
}

// member is one node as GET /cluster shows it.
type member struct {
	ID          string `json:"id"`
	Role        string `json:"role"`
	State       string `json:"state"`
	Layers      string `json:"layers,omitempty"`
	Pipeline    string `json:"pipeline,omitempty"`
	GRPC        string `json:"grpc,omitempty"`
	HTTP        string `json:"http,omitempty"`
	FreeBlocks  int    `json:"free_blocks"`
	TotalBlocks int    `json:"total_blocks"`
	Queue       int    `json:"queue"`
	Routed      bool   `json:"routed"`
}

// handleCluster lists the members as membership reports them, and which leaders the
// router sends requests to.
func (f *Frontend) handleCluster(w http.ResponseWriter, r *http.Request) {
	routed := map[string]bool{}
	for _, id := range f.router.Leaders() {
		routed[id] = true
	}
	var out []member
	for _, m := range f.member.Members() {
		mm := member{ID: m.ID, Role: string(m.Role), State: string(m.State), Pipeline: m.Pipeline, GRPC: m.GRPCAddr,
			HTTP: m.HTTPAddr, FreeBlocks: m.FreeBlocks, TotalBlocks: m.TotalBlocks, Queue: m.QueueDepth, Routed: routed[m.ID]}
		if m.Last > 0 {
			mm.Layers = fmt.Sprintf("%d:%d", m.First, m.Last)
		}
		out = append(out, mm)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"members": out})
}

// URL is the router's HTTP base URL at its advertised address (Config.Advertise), not
// the unusable "http://[::]:8080" of a router listening on every interface.
func (f *Frontend) URL() string { return "http://" + f.member.Self().HTTPAddr }

// NATSURL is the NATS server the cluster's leaders publish to.
func (f *Frontend) NATSURL() string { return f.natsURL }

// GossipAddr is the router's membership address, a seed for the workers.
func (f *Frontend) GossipAddr() string { return f.member.Addr() }

// Leaders is the ids of the pipeline leaders the router sends requests to.
func (f *Frontend) Leaders() []string { return f.router.Leaders() }

// Shutdown drains the HTTP API until ctx ends and stops.
func (f *Frontend) Shutdown(ctx context.Context) error {
	err := f.api.Shutdown(ctx, f.http)
	lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = errors.Join(err, f.member.Leave(lctx))
	f.close()
	return err
}

func (f *Frontend) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.done.Wait()
	f.mu.Lock()
	for _, lc := range f.leaders {
		lc.client.Close()
	}
	f.leaders = nil
	f.mu.Unlock()
	if f.member != nil {
		f.member.Shutdown()
	}
	if f.sub != nil {
		f.sub.Close()
	}
	if f.nc != nil {
		f.nc.Close()
	}
	if f.nats != nil {
		f.nats.Close()
	}
	if f.ln != nil {
		f.ln.Close()
	}
	if f.ck != nil {
		f.ck.Close()
	}
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("frontend: NATS address %q: %w", addr, err)
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		return "", 0, fmt.Errorf("frontend: NATS port %q: %w", port, err)
	}
	if p == 0 {
		p = -1 // the embedded server's "any free port"
	}
	return host, p, nil
}
