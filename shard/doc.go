// Package shard places a model's layers on workers: which worker holds which layer range,
// in which pipeline, and which pipelines can serve. It is a pure planner: no IO, no
// goroutines, no clock. The node feeds it the membership view and gossips the answer.
//
// # Use
//
//	plan, errs := shard.Build(model, workers)        // the view: live workers, any order
//	r, pipeline, err := plan.Assign(model, me, minKV) // where a new worker goes
//	err = shard.Check(model, plan, me)                // an explicit --layers range
//	serving := plan.Serving(model, nil)               // complete pipelines of ready workers
//
// In a node, the loop around the planner (not in this package) is:
//
//  1. Start loading; gossip Range (an explicit --layers range, else none) without a
//     Pipeline, so that others count this worker as Waiting.
//  2. Build from the view and Assign; gossip the answer (Range and Pipeline); load those
//     layers; gossip Ready.
//  3. On every membership change, Build again. A node that Build left out (Find fails
//     while it has a Pipeline) lost an overlap to a worker that chose from another view:
//     it logs the ErrOverlap, drops its Pipeline (and its Range, if it was assigned) and
//     goes back to step 2. Only pipelines in Serving take requests.
//
// A Worker comes from a cluster.Meta: Range = &Range{First, Last} once the node has one
// (Last > First), Pipeline = Meta.Pipeline, Ready = (State == ready), Incarnation =
// Meta.Incarnation, and MemoryBytes what the node offers (Meta.Memory, gossiped in MiB;
// node.Config.Memory). A worker without a Range yet is Waiting, with its memory. A draining
// worker is passed as not ready: it keeps its layers (nobody else takes them) and its
// pipeline stops taking requests. A waiting Worker whose MemoryBytes is 0 (unknown) is
// never given a place by another node's Assign, so a view without memory figures places
// each waiting worker on its own, when it asks.
//
// # Ranges
//
// A Range is half-open, [First, Last), as in cluster.Meta; on the command line it is
// "first:last" like a Go slice expression ("0:4" is layers 0-3; ParseRange). A pipeline
// is complete when its stages cover layers 0 to Layers-1 contiguously, without overlap,
// and every stage's worker is ready (Pipeline.Complete); only complete pipelines serve.
//
// # Invariants
//
//   - In a Plan from Build, every pipeline's stages are disjoint, valid, inside the model
//     and sorted by first layer; pipelines are sorted by ID; no worker appears twice.
//   - Build is a function of the set of workers, not their order: every node that sees
//     the same view builds the same plan. Of overlapping workers in one pipeline, the
//     ready one, else the older (smaller Incarnation), else the one with the smaller ID,
//     is kept; the other is reported (ErrOverlap, naming both workers and ranges) and
//     left out, and should Assign again.
//   - Assign never returns a range that overlaps a stage of its pipeline in the plan it
//     was asked on, or that Check refuses.
//
// # Where a new worker goes (Assign)
//
// Assign places every Waiting worker of the view together with the asking one, in a fixed
// order, and reports the asking worker's place; workers that start at the same time and
// see the same view so choose disjoint ranges without talking to each other. If views
// differ, two workers may still choose overlapping ranges; Build then keeps one and the
// other asks again.
//
//  1. Workers with an explicit range, by ID: each joins the pipeline whose gap holds its
//     range (gaps in the order of step 2), else starts a new pipeline.
//  2. Workers without a range, largest memory first (then by ID), fill the gaps of
//     incomplete pipelines: the layers a dead worker left, or the missing tail of a
//     pipeline still forming. The pipeline missing the fewest layers goes first (it is
//     the closest to serving: one that lost a worker before one still forming), then the
//     largest gap, then by pipeline ID and first layer. Each gap takes the shortest run
//     of waiting workers that can cover it.
//  3. Then workers still waiting start new pipelines ("p0", "p1", ...: the first free
//     name), each covering layers 0 to Layers-1 with the shortest run of waiting workers
//     that can; when too few are waiting, they take their share as below and the rest
//     stays a gap for the workers to come.
//
// A worker can hold n layers from layer f when Model.Bytes([f, f+n), minKVTokens), the n
// layers' weights, the KV of minKVTokens tokens in each, the embedding if f is 0 and the
// classifier if the range ends at the last layer, fits its MemoryBytes. A worker that
// cannot hold even one layer where one is needed gets ErrNoFit.
//
// # Balancing
//
// The workers that cover a gap split it in proportion to the memory each offers, less the
// embedding on the stage holding layer 0 and the classifier on the stage holding the last
// layer, rounded to whole layers, each at least one and at most what it can hold. Equal
// memory left per layer means every stage has room for about the same number of tokens of
// KV, so no stage limits the pipeline's cache much sooner than the others. When the
// waiting workers cannot cover a gap, the split counts the missing workers as copies of
// the smallest waiting one: a pipeline formed one worker at a time by workers of equal
// memory is balanced (two of room for 8 of 12 layers take 6 each, not 8 and 4); unequal
// ones arriving apart may need a stage more than if they had started together. One
// worker that can hold the whole model forms a pipeline of its own: a replica is better
// than a split. Ranges of placed workers never move.
//
// # Tests
//
// The scenarios are data-driven scripts in testdata/*.txt (see TestScripts for the
// commands; go test -run TestScripts -update rewrites the expected output). A seeded
// random test joins and kills workers and checks the invariants after every step; a fuzz
// target feeds Build and Assign arbitrary views.
//
// # The stage side of a pipeline
//
// A StageServer runs a Runner per session of its pipeline's leader: a mirror KV cache at
// the leader's block ids, the copy-on-write copies and disk moves of each step repeated
// before it runs, and, with StageServerConfig.SwapPath, a disk tier of the stage's own
// layers (stagedisk.go) that answers the leader's Have.
//
// Whether a worker serves the same model (checkpoint and tokenizer identity) is not
// checked here: the cluster refuses a node of another model before it enters the view
// (cluster.Config.Accept).
package shard
