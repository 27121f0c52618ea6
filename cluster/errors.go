package cluster

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the returned errors wrap them
// with context.
var (
	// ErrBadMeta: a Meta that does not validate (an empty ID, an unknown Role or State, a
	// negative count, First > Last, FreeBlocks > TotalBlocks), bytes that do not decode as
	// a Meta, or an Update that tries to change the node's ID or Incarnation.
	ErrBadMeta = errors.New("cluster: invalid node metadata")
	// ErrMetaTooLarge: a Meta whose encoding exceeds MaxMetaSize (memberlist's limit).
	ErrMetaTooLarge = errors.New("cluster: node metadata too large")
	// ErrBadConfig: a Config that Join cannot start a member from.
	ErrBadConfig = errors.New("cluster: invalid config")
	// ErrNoSeed: no seed answered before the context given to Join ended.
	ErrNoSeed = errors.New("cluster: no seed answered")
	// ErrRefused: the cluster the seeds belong to holds a node that Config.Accept refuses
	// (for example a node serving another model), so joining it would merge the two.
	ErrRefused = errors.New("cluster: peer refused")
	// ErrClosed: the Member has left or been shut down.
	ErrClosed = errors.New("cluster: member closed")
)
