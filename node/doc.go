// Package node runs one worker of a kvmesh cluster: it holds a layer range of the model,
// joins membership, and serves either as a pipeline leader (layer 0: the engine, the
// Leader gRPC service for routers, KV events on NATS) or as a later stage (the Stage gRPC
// service). cmd/node is this package behind flags; tests start nodes in-process.
//
// # Life of a node
//
//  1. Open the checkpoint and join the cluster in state "loading".
//  2. Take the layer range: the one configured, or (none configured) the one placement
//     gives it from the ranges the members gossip: a gap a dead worker left first, else a
//     new pipeline (shard.Plan.Assign). Placement balances by the memory every worker
//     gossips (Config.Memory, cluster.Meta.Memory) and keeps room beside the weights for
//     the KV of one sequence of the model's full context (minKVTokens). A configured range that
//     overlaps a live worker of its pipeline, or does not fit Config.Memory, is refused:
//     Start logs "layer range refused" with the reason, leaves the cluster and fails.
//     A node of another model is refused by membership before that (cluster.SameModel):
//     Start fails with cluster.ErrRefused, and the peers log "cluster: refusing node".
//  3. Serve gRPC. A later stage is ready at once. A leader is ready once every later
//     layer of its pipeline is held by a ready member and a session through them is open;
//     it watches membership and re-dials its pipeline when a stage is replaced. Its KV
//     cache (Engine.KVMemory) sets the pipeline's block count, which every stage mirrors;
//     it warns of a stage whose gossiped memory cannot hold that mirror.
//  4. Gossip load (free KV blocks, queue depth) every Config.UpdateInterval.
//  5. On Shutdown: leave the cluster (state "draining" first), drain, stop.
package node
