// Package cluster is kvmesh's membership: which nodes are alive, where they are and what
// they hold. It runs hashicorp/memberlist (SWIM gossip with failure detection) and gossips
// a compact Meta per node: role, gRPC and HTTP addresses, model identity, layer range,
// pipeline, free KV blocks, queue depth, state, and the memory a worker offers.
//
// # Use
//
//	m, err := cluster.Join(ctx, cfg, meta) // cfg.Seeds: host:port or DNS names
//	events, cancel := m.Subscribe()        // Join for every member, then changes
//	m.Update(meta)                         // gossip changed load or state; returns at once
//	m.Members()                            // alive nodes, self included, by ID
//	m.Leave(ctx)                           // others see Leave; Shutdown: they see Dead
//
// # Nodes and incarnations
//
// A node is named by Meta.ID; each process start is a new Meta.Incarnation (Join sets
// it to the start time in ns when 0). Each incarnation is its own memberlist node
// ("ID#incarnation-hex"), so a restarted node may come back at another address at once,
// without waiting for its old self to be declared dead. The view holds, per ID, the
// alive incarnation with the highest number; an older one is stale and ignored, and its
// later death is not reported.
//
// # Events
//
// KindJoin: an ID entered the view. KindUpdate: its Meta changed within one incarnation.
// KindLeave: it called Leave. KindDead: it stopped answering probes (a crash, a
// partition); a node whose leave notice did not arrive before its leave is also reported
// Dead. KindRestart: an ID in the view appeared with a newer incarnation. A consumer that
// keeps state per node (the router's prefix index) drops all of it on Leave, Dead and
// Restart: the incarnation it came from is gone. A node restarted after its old
// incarnation was noticed dead is seen as Dead, then Join with the new Incarnation.
//
// Events are delivered in the order this node learns them, per subscriber, from a
// goroutine of the subscriber's own, so that a slow reader never blocks gossip. Queued
// events wait in an unbounded queue; a queued Update folds into the node's queued Join,
// Update or Restart (its Meta replaced by the newest), so a stalled reader holds a few
// events per node however often loads are re-gossiped; Join, Leave, Dead and Restart
// are never dropped or reordered. Cancelling, Leave and Shutdown close the channel and
// drop what is still queued.
//
// # Leave and Dead
//
// memberlist does not tell its event callbacks whether a node left or died, so Leave
// first sends every other alive node a leave notice over TCP (a memberlist user message)
// and waits until each has recorded it and acked (at most half of ctx's time, or
// StreamTimeout), then gossips the leave. A node reports Leave when it holds the notice, Dead
// otherwise: only a node that did not ack in time can report a leaving node Dead.
//
// # Metadata on the wire
//
// Meta encodes as a version byte (2), then each field in declaration order: strings as a
// uvarint length and bytes, numbers as uvarints, Role and State as a one-byte code. The
// whole must fit memberlist's MaxMetaSize (512 bytes); Join and Update refuse a larger
// one with ErrMetaTooLarge. A worker's Meta with a 64-hex-digit model identity and
// IPv4 addresses takes about 135 bytes (TestMetaCompact). A decoder reads a later version's known
// fields and ignores what follows them (later versions only append); version 1 (before
// Memory was appended) decodes with Memory 0. A node whose Meta does not decode,
// whose memberlist name does not match its ID and incarnation, or that Config.Accept
// refuses (say, another model) is kept out of memberlist altogether (its alive messages
// are vetoed, logged once per node at warn level), and Join into a cluster holding such
// a node fails with ErrRefused.
//
// # Seeds and security
//
// Join resolves every seed name to all of its addresses (on Kubernetes, a headless
// service gives every pod), skips this node's own address, and retries with backoff
// (100 ms doubling to 5 s) until a seed answers or ctx ends (ErrNoSeed, with the last
// error). No seeds starts a new cluster, and so does a seed list that includes this
// node when no other seed answers (a headless service lists this pod too). While
// running, the seeds are resolved again every RejoinInterval and new addresses joined,
// so nodes started at the same time, or split by a partition, end in one cluster. Config.SecretKey (16, 24 or 32
// bytes) encrypts and authenticates all gossip with AES-GCM; every node needs the same
// key. Garbage on the gossip port (UDP or TCP) is logged by memberlist and dropped.
//
// # Threading
//
// Member's methods are safe for concurrent use. memberlist calls this package's
// delegates on its own goroutines, with its node lock held; they take Member.mu briefly,
// so Member never calls memberlist while holding mu (lock order: memberlist's node lock,
// then Member.mu). Config.Accept runs inside those callbacks.
package cluster
