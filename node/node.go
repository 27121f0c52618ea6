package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/cluster"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/kvindex"
	"github.com/kvmesh/kvmesh/leader"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
	"github.com/kvmesh/kvmesh/shard"
)

// Config configures a worker.
type Config struct {
	// ID names the node in membership and logs ("worker-1"). Required.
	ID string
	// Model is the checkpoint file. Required.
	Model string
	// Range is the layers to hold, "first:last"; empty lets placement choose.
	Range string
	// Pipeline names the pipeline of an explicit Range. Default "p0".
	Pipeline string
	// Memory is what the worker offers for its weights and KV cache, bytes; it is
	// gossiped (in whole MiB, rounded up) and placement balances layer ranges by it.
	// Default: Engine.KVMemory (default 64 MiB) plus the weights of Range, or of the
	// whole model when Range is empty (it may be given any range). The leader's KV cache
	// is still sized by Engine.KVMemory; later stages mirror its block count.
	Memory int64
	// GRPCAddr is the gRPC listen address. Default "127.0.0.1:0".
	GRPCAddr string
	// Advertise is the host or IP other nodes reach this node's gRPC and HTTP servers at.
	// Default: the listen host, or, when that is unspecified (0.0.0.0, ::), the IP
	// membership advertises (cluster.AdvertiseAddr).
	Advertise string
	// HTTPAddr, when set, serves GET /healthz, /readyz and /metrics there (health.go).
	// Default "": no HTTP server.
	HTTPAddr string
	// Gossip configures membership (bind address, seeds, key).
	Gossip cluster.Config
	// NATSURL is where a leader publishes its KV events; empty publishes none.
	NATSURL string
	// NATS authenticates to NATSURL.
	NATS kvindex.ClientConfig
	// Engine configures a leader's engine (block size, KV memory, limits). Its SwapPath
	// and SwapMaxBytes are the node's disk tier whatever its role: a later stage keeps
	// the K/V of its own layers there (shard.StageServerConfig.SwapPath).
	Engine engine.Config
	// TLS secures gRPC (mutual TLS when CAFile is set): the node's own server, and a
	// leader's connections to its stages. Default: off.
	TLS leader.TLS
	// Settle is how long a node without a Range watches membership before it asks
	// placement for one, so that it sees the ranges already held. Default 1s.
	Settle time.Duration
	// UpdateInterval is how often load is gossiped and the pipeline checked. Default 250ms.
	UpdateInterval time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Node is a running worker.
type Node struct {
	cfg    Config
	ck     *ckpt.Checkpoint
	model  *model.Model
	member *cluster.Member
	rng    shard.Range
	pipe   string
	memMiB int // memory offered, MiB (Config.Memory rounded up)
	ln     net.Listener
	health *health                        // nil without Config.HTTPAddr
	joined atomic.Pointer[cluster.Member] // member once joined, for the HTTP handlers

	// A leader's parts.
	engine *engine.Engine
	down   *downstream
	lsrv   *leader.Server
	nc     *nats.Conn
	pub    *kvindex.Publisher

	// A later stage's part.
	ssrv *shard.StageServer

	short map[string]uint64 // stage ID -> incarnation already logged as short of memory; loop only

	stop chan struct{}
	done sync.WaitGroup
}

// Start brings a worker up; it returns once it serves gRPC (a leader may not be ready yet).
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.ID == "" || cfg.Model == "" {
		return nil, errors.New("node: an ID and a model are required")
	}
	if cfg.Pipeline == "" {
		cfg.Pipeline = "p0"
	}
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:0"
	}
	if cfg.Settle == 0 {
		cfg.Settle = time.Second
	}
	if cfg.UpdateInterval == 0 {
		cfg.UpdateInterval = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, stop: make(chan struct{})}
	var err error
	if cfg.HTTPAddr != "" {
		// First, so that /healthz answers while the node loads and joins.
		if n.health, err = startHealth(cfg.HTTPAddr, n.ready, cfg.Logger); err != nil {
			return nil, err
		}
		n.cfg.Engine.Registry = n.health.reg
	}
	if n.ck, err = ckpt.Open(cfg.Model); err != nil {
		n.health.close()
		return nil, err
	}
	if n.model, err = model.New(n.ck); err != nil {
		n.ck.Close()
		return nil, err
	}
	if n.ln, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		n.ck.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	identity := n.model.Identity()
	gc := cfg.Gossip
	if gc.Logger == nil {
		gc.Logger = cfg.Logger
	}
	gc.Accept = cluster.SameModel(identity)
	if n.memMiB, err = n.offeredMiB(); err != nil {
		n.close()
		return nil, err
	}
	meta := cluster.Meta{ID: cfg.ID, Role: cluster.RoleWorker, Model: identity, State: cluster.StateLoading, Memory: n.memMiB}
	n.advertise(&meta, "")
	if n.member, err = cluster.Join(ctx, gc, meta); err != nil {
		n.close()
		return nil, fmt.Errorf("node: joining the cluster: %w", err)
	}
	// An unspecified listen host advertises the IP gossip chose, known only now. The
	// node is still loading: nobody dials it before this update.
	self := n.member.Self()
	n.advertise(&self, n.member.Addr())
	if err := n.member.Update(self); err != nil {
		n.close()
		return nil, err
	}
	n.joined.Store(n.member)
	if err := n.place(ctx); err != nil {
		n.leave() // at once, rather than be seen loading until declared dead
		n.close()
		return nil, err
	}
	if n.rng.First == 0 {
		err = n.startLeader(ctx)
	} else {
		err = n.startStage()
	}
	if err != nil {
		n.close()
		return nil, err
	}
	n.done.Add(1)
	go n.loop()
	cfg.Logger.Info("node serving", "id", cfg.ID, "layers", n.rng.String(), "pipeline", n.pipe, "grpc", n.GRPCAddr(), "gossip", n.member.Addr())
	return n, nil
}

// advertise sets the addresses meta gossips for the node's servers; gossip is the
// membership address ("" before joining).
func (n *Node) advertise(meta *cluster.Meta, gossip string) {
	meta.GRPCAddr = cluster.AdvertiseAddr(n.ln.Addr(), n.cfg.Advertise, gossip)
	if n.health != nil {
		meta.HTTPAddr = cluster.AdvertiseAddr(n.health.ln.Addr(), n.cfg.Advertise, gossip)
	}
}

// ready reports what GET /readyz answers: the layers are loaded, the node has joined,
// and it gossips state ready (a leader: its pipeline is connected).
func (n *Node) ready() bool {
	m := n.joined.Load()
	return m != nil && m.Self().State == cluster.StateReady
}

// shardModel describes the checkpoint to placement: bytes per layer and per end.
func (n *Node) shardModel() shard.Model {
	c := n.model.Config
	layer := int64(4) * int64(2*c.Dim+2*c.Dim*c.Dim+2*c.Dim*c.KVDim()+3*c.Dim*c.HiddenDim)
	return shard.Model{
		Layers: c.Layers, LayerBytes: layer,
		EmbedBytes: int64(4 * c.Vocab * c.Dim), HeadBytes: int64(4 * c.Dim),
		KVBytesPerToken: int64(2 * 4 * c.KVDim()),
	}
}

// offeredMiB is Config.Memory in whole MiB, rounded up, or its default.
func (n *Node) offeredMiB() (int, error) {
	b := n.cfg.Memory
	if b == 0 {
		kv := n.kvMemory()
		sm := n.shardModel()
		r := shard.Range{First: 0, Last: sm.Layers}
		if n.cfg.Range != "" {
			var err error
			if r, err = shard.ParseRange(n.cfg.Range); err != nil {
				return 0, fmt.Errorf("node: %w", err)
			}
		}
		b = kv + sm.Bytes(r, 0)
	}
	mib := (b + 1<<20 - 1) >> 20
	if b < 0 || mib > math.MaxInt32 {
		return 0, fmt.Errorf("node: memory %d bytes: want 0 to 2^31-1 MiB", b)
	}
	return int(mib), nil
}

// workerOf is member m as placement sees it: a Range and Pipeline once it holds layers
// (else it is waiting for a place), and the memory it gossips.
func workerOf(m cluster.Meta) shard.Worker {
	w := shard.Worker{ID: m.ID, MemoryBytes: int64(m.Memory) << 20, Pipeline: m.Pipeline,
		Ready: m.State == cluster.StateReady, Incarnation: m.Incarnation}
	if m.Last > m.First {
		w.Range = &shard.Range{First: m.First, Last: m.Last}
	} else {
		w.Pipeline = ""
	}
	return w
}

// assign returns the layer range and pipeline placement gives this node among members
// (the other workers, placed and waiting): Config.Range and Config.Pipeline once they are
// accepted, else a range of placement's choice.
func (n *Node) assign(members []cluster.Meta) (shard.Range, string, error) {
	var ws []shard.Worker
	for _, m := range members {
		if m.Role == cluster.RoleWorker && m.ID != n.cfg.ID {
			ws = append(ws, workerOf(m))
		}
	}
	me := shard.Worker{ID: n.cfg.ID, MemoryBytes: int64(n.memMiB) << 20}
	if n.cfg.Range != "" {
		r, err := shard.ParseRange(n.cfg.Range)
		if err != nil {
			return shard.Range{}, "", err
		}
		me.Range, me.Pipeline = &r, n.cfg.Pipeline
	}
	sm := n.shardModel()
	plan, _ := shard.Build(sm, ws)
	return plan.Assign(sm, me, n.minKVTokens())
}

// minKVTokens is the KV cache, in tokens, placement keeps room for beside a worker's
// weights: one sequence of the model's full context, or fewer if the KV memory
// (Engine.KVMemory) over all layers holds fewer, so that the default Memory always fits.
func (n *Node) minKVTokens() int {
	sm := n.shardModel()
	kv := n.kvMemory()
	if per := int64(sm.Layers) * sm.KVBytesPerToken; per > 0 {
		return int(min(int64(n.model.Config.SeqLen), kv/per))
	}
	return n.model.Config.SeqLen
}

// kvMemory is Engine.KVMemory or its default.
func (n *Node) kvMemory() int64 {
	if kv := n.cfg.Engine.KVMemory; kv > 0 {
		return kv
	}
	return 64 << 20 // engine.Config's default
}

// place takes the configured range once placement accepts it (no overlap with a live
// worker of its pipeline, room for its weights and minKVTokens in Config.Memory), or
// asks placement for one.
func (n *Node) place(ctx context.Context) error {
	if n.cfg.Range == "" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(n.cfg.Settle):
		}
	}
	r, pipe, err := n.assign(n.member.Members())
	switch {
	case err != nil && n.cfg.Range != "":
		n.cfg.Logger.Error("layer range refused", "id", n.cfg.ID, "range", n.cfg.Range, "pipeline", n.cfg.Pipeline,
			"memory_mib", n.memMiB, "err", err)
		return fmt.Errorf("node: layer range refused: %w", err)
	case err != nil:
		n.cfg.Logger.Error("placement found no layers for this node", "id", n.cfg.ID, "memory_mib", n.memMiB, "err", err)
		return fmt.Errorf("node: placement: %w", err)
	}
	n.rng, n.pipe = r, pipe
	if n.cfg.Range == "" {
		n.cfg.Logger.Info("placement gave this node its layers", "id", n.cfg.ID, "range", r.String(), "pipeline", pipe,
			"memory_mib", n.memMiB)
	}
	self := n.member.Self()
	self.First, self.Last, self.Pipeline = n.rng.First, n.rng.Last, n.pipe
	return n.member.Update(self)
}

func (n *Node) startStage() error {
	sc := shard.DefaultStageServerConfig()
	sc.Model, sc.Range, sc.Logger = n.model, n.rng, n.cfg.Logger
	sc.SwapPath, sc.SwapMaxBytes = n.cfg.Engine.SwapPath, n.cfg.Engine.SwapMaxBytes
	sc.TLS = n.cfg.TLS
	var err error
	if n.ssrv, err = shard.NewStageServer(sc); err != nil {
		return err
	}
	go n.ssrv.Serve(n.ln)
	return n.setState(cluster.StateReady)
}

func (n *Node) startLeader(ctx context.Context) error {
	layers := n.model.Config.Layers
	ec := n.cfg.Engine
	ec.Logger = n.cfg.Logger
	ec.RecordEvents = n.cfg.NATSURL != ""
	if ec.BlockSize == 0 {
		ec.BlockSize = 16
	}
	ec.KeySeed = kvindex.Seed(n.model.Identity(), "", ec.BlockSize)
	if n.rng.Last < layers {
		n.down = &downstream{log: n.cfg.Logger}
		ec.Downstream, ec.LeaderLayers = n.down, n.rng.Last
	}
	var err error
	if n.engine, err = engine.New(n.model, ec); err != nil {
		return err
	}
	if n.down != nil {
		n.down.geometry = shard.PipelineConfig{
			Model: n.model.Identity(), FirstLayer: n.rng.Last, Pipeline: n.pipe,
			BlockSize: ec.BlockSize, NumBlocks: n.engine.Stats().BlocksTotal, KVDType: ec.KVDType,
			MaxTokens: max(ec.MaxBatchTokens, 256), Logger: n.cfg.Logger, TLS: n.cfg.TLS,
		}
	}
	lc := leader.DefaultServerConfig()
	lc.NodeID, lc.Incarnation, lc.Model = n.cfg.ID, n.member.Self().Incarnation, n.model.Identity()
	lc.FirstLayer, lc.EndLayer, lc.Logger, lc.TLS = n.rng.First, n.rng.Last, n.cfg.Logger, n.cfg.TLS
	if n.lsrv, err = leader.NewServer(n.engine, lc); err != nil {
		return err
	}
	go n.lsrv.Serve(n.ln)
	if n.cfg.NATSURL != "" {
		if n.nc, err = kvindex.Connect(n.cfg.NATSURL, n.cfg.NATS); err != nil {
			return fmt.Errorf("node: NATS: %w", err)
		}
		n.pub, err = kvindex.NewPublisher(n.nc, kvindex.PublisherConfig{
			Model: n.model.Identity(), Node: n.cfg.ID, Incarnation: n.member.Self().Incarnation,
			Keys: func() []blocks.BlockHash { return n.engine.CachedKeys(nil) }, Logger: n.cfg.Logger,
		})
		if err != nil {
			return fmt.Errorf("node: KV events: %w", err)
		}
	}
	return nil
}

// loop gossips load, forwards KV events, and keeps a leader's pipeline connected.
func (n *Node) loop() {
	defer n.done.Done()
	tick := time.NewTicker(n.cfg.UpdateInterval)
	defer tick.Stop()
	var events []blocks.Event
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		if n.engine == nil {
			continue
		}
		if n.pub != nil {
			events = n.engine.Events(events[:0])
			if err := n.pub.Publish(events); err != nil {
				n.cfg.Logger.Warn("publishing KV events", "err", err)
			}
		}
		ready := true
		if n.down != nil {
			ready = n.down.sync(n.stages())
		}
		st := n.engine.Stats()
		self := n.member.Self()
		self.FreeBlocks, self.TotalBlocks, self.QueueDepth = st.BlocksFree, st.BlocksTotal, st.Running+st.Waiting
		self.State = cluster.StateLoading
		if ready {
			self.State = cluster.StateReady
		}
		n.member.Update(self)
	}
}

// stages returns the addresses of the ready members that continue this node's pipeline
// from its last layer to the model's end, in order, or nil if the chain is incomplete.
func (n *Node) stages() []string {
	var ms []cluster.Meta
	for _, m := range n.member.Members() {
		if m.Role == cluster.RoleWorker && m.Pipeline == n.pipe && m.First > 0 && m.State == cluster.StateReady {
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].First < ms[j].First })
	var addrs []string
	at := n.rng.Last
	for _, m := range ms {
		if m.First == at {
			addrs = append(addrs, m.GRPCAddr)
			at = m.Last
			n.checkStageMemory(m)
		}
	}
	if at != n.model.Config.Layers {
		return nil
	}
	return addrs
}

// mirrorBytes is what a stage holding r needs to serve this leader's pipeline: r's
// weights, and this leader's KV blocks (their number, size and type) for r's layers.
func (n *Node) mirrorBytes(r shard.Range) int64 {
	g := n.down.geometry
	shape := n.model.KVShape(g.BlockSize)
	shape.Layers = r.Len()
	return n.shardModel().Bytes(r, 0) + int64(g.NumBlocks)*int64(shape.BlockBytes(g.KVDType))
}

// checkStageMemory logs, once per stage incarnation, a stage whose gossiped memory is
// short of what mirroring this leader's KV cache takes (the leader's --kv-memory, not
// the stages' --memory, sizes a pipeline's cache). The stage still serves.
func (n *Node) checkStageMemory(m cluster.Meta) {
	need := n.mirrorBytes(shard.Range{First: m.First, Last: m.Last})
	if m.Memory == 0 || need <= int64(m.Memory)<<20 || n.short[m.ID] == m.Incarnation {
		return
	}
	if n.short == nil {
		n.short = map[string]uint64{}
	}
	n.short[m.ID] = m.Incarnation
	n.cfg.Logger.Warn("a stage offers less memory than mirroring this leader's KV cache takes; lower the leader's --kv-memory or give the stage more --memory",
		"stage", m.ID, "layers", fmt.Sprintf("%d:%d", m.First, m.Last), "memory_mib", m.Memory,
		"need_mib", (need+1<<20-1)>>20, "kv_blocks", n.down.geometry.NumBlocks)
}

func (n *Node) setState(s cluster.State) error {
	self := n.member.Self()
	self.State = s
	return n.member.Update(self)
}

// Range is the node's layer range, and Pipeline its pipeline.
func (n *Node) Range() shard.Range { return n.rng }

// Pipeline is the pipeline the node belongs to.
func (n *Node) Pipeline() string { return n.pipe }

// GRPCAddr is the address other nodes reach the node's gRPC server at.
func (n *Node) GRPCAddr() string { return n.member.Self().GRPCAddr }

// HTTPAddr is the address the node's HTTP server (health, metrics) listens on, "" without
// one.
func (n *Node) HTTPAddr() string {
	if n.health == nil {
		return ""
	}
	return n.health.ln.Addr().String()
}

// Engine is a leader's engine (nil on a later stage).
func (n *Node) Engine() *engine.Engine { return n.engine }

// Shutdown leaves the cluster, drains a leader's requests until ctx ends, and stops.
func (n *Node) Shutdown(ctx context.Context) error {
	n.setState(cluster.StateDraining)
	close(n.stop)
	n.done.Wait()
	var err error
	if n.lsrv != nil {
		err = n.lsrv.Shutdown(ctx)
	}
	if n.engine != nil {
		err = errors.Join(err, n.engine.Shutdown(ctx))
	}
	err = errors.Join(err, n.leave())
	n.close()
	return err
}

// leave leaves the cluster. Leaving only announces the departure (peers that do not
// answer in time see the node dead instead), so it gets a short budget of its own.
func (n *Node) leave() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return n.member.Leave(ctx)
}

// close releases what Start acquired, in reverse.
func (n *Node) close() {
	if n.pub != nil {
		n.pub.Close()
	}
	if n.nc != nil {
		n.nc.Close()
	}
	if n.down != nil {
		n.down.close()
	}
	if n.ssrv != nil {
		n.ssrv.Stop()
	}
	if n.lsrv != nil {
		n.lsrv.Stop()
	}
	if n.member != nil {
		n.member.Shutdown()
	}
	if n.ln != nil {
		n.ln.Close()
	}
	n.ck.Close()
	n.health.close()
}
