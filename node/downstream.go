package node

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/shard"
)

// errNoPipeline: the leader's pipeline is missing a stage.
var errNoPipeline = errors.New("node: the pipeline is not complete")

// errStagesReplaced: the stages' session was replaced since the engine's last step, so
// the leader's prefix cache names K/V the stages no longer hold.
var errStagesReplaced = errors.New("node: the pipeline's stages were replaced; their KV cache is empty")

// downstream is a leader's engine.Downstream over the stages membership reports: it dials
// a session when the chain is complete and re-dials when a stage is replaced.
//
// A new session starts every stage from an empty cache, while the engine's prefix cache
// still holds the blocks the old stages computed: a prompt matching them would run the
// later layers over K/V that is not there, and its output would silently differ. The
// engine forgets its prefix cache whenever a step fails (engine.ErrPipeline), which
// covers a stage lost mid-step; a stage replaced while the leader was idle is not seen by
// any step, so the first Send after such a re-dial fails with errStagesReplaced instead
// of sending, and the engine forgets then (failing the requests it holds, which the
// router resumes).
type downstream struct {
	log      *slog.Logger
	geometry shard.PipelineConfig // everything but Stages, set once the engine exists

	mu     sync.Mutex // protects the fields below but sent; never held while dialing
	client *shard.StageClient
	addrs  []string
	dialed bool // a session was opened before
	// clean: the engine's prefix cache holds nothing computed by earlier sessions (no
	// step has succeeded since the last failed one, after which the engine forgot it).
	clean bool
	stale bool // the session was replaced while not clean: fail the next Send
	// retired: clients the node's loop replaced, closed by the engine's loop once no step
	// in flight went through them (a client is used by one goroutine at a time).
	retired []*shard.StageClient

	sent []*shard.StageClient // the client of each step in flight, oldest first (the engine's loop only)
}

var (
	_ engine.Downstream = (*downstream)(nil)
	_ engine.KeyHolder  = (*downstream)(nil)
)

// sync points the downstream at the chain of addrs (nil: incomplete) and reports whether
// a session through it is open. It dials outside the lock, so a Step in progress never
// waits behind a dial. Only the node's loop calls sync.
func (d *downstream) sync(addrs []string) bool {
	d.mu.Lock()
	if !slices.Equal(addrs, d.addrs) {
		if d.client != nil {
			d.retired = append(d.retired, d.client)
			d.client = nil
		}
		d.addrs = addrs
	}
	connected := d.client != nil
	d.mu.Unlock()
	if connected || len(addrs) == 0 {
		return connected
	}
	cfg := d.geometry
	cfg.Stages = addrs
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	c, err := shard.DialPipeline(ctx, cfg)
	cancel()
	if err != nil {
		d.log.Warn("pipeline not ready", "stages", addrs, "err", err)
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client != nil || !slices.Equal(addrs, d.addrs) { // closed or re-pointed meanwhile
		c.Close()
		return d.client != nil
	}
	d.client = c
	if d.dialed && !d.clean {
		d.stale = true
	}
	d.dialed = true
	d.log.Info("pipeline connected", "stages", addrs)
	return true
}

// closeRetired closes the retired clients no step in flight went through. Only the
// engine's loop calls it.
func (d *downstream) closeRetired() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.retired = slices.DeleteFunc(d.retired, func(c *shard.StageClient) bool {
		if slices.Contains(d.sent, c) {
			return false
		}
		c.Close()
		return true
	})
}

// Send sends st through the current session's client.
func (d *downstream) Send(ctx context.Context, st *engine.StageStep) error {
	d.closeRetired()
	d.mu.Lock()
	c, stale := d.client, d.stale
	d.stale = false
	d.mu.Unlock()
	var err error
	switch {
	case c == nil:
		err = errNoPipeline
	case stale:
		err = errStagesReplaced
	default:
		err = c.Send(ctx, st)
	}
	if err != nil {
		d.failed()
		return err
	}
	d.sent = append(d.sent, c)
	return nil
}

// failed records that a Send or Recv failed, after which the engine abandons every step
// in flight and forgets its prefix cache. The session's client goes too (the node's loop
// dials a fresh one): steps sent through it may still be in flight there, after one on
// an older client failed, and their replies would otherwise be taken for the engine's
// next steps, a later step's tokens handed to other sequences. Only the engine's loop
// calls it.
func (d *downstream) failed() {
	d.sent = d.sent[:0]
	d.closeRetired()
	d.mu.Lock()
	d.clean = true
	if d.client != nil {
		d.client.Close()
		d.client, d.addrs = nil, nil
	}
	d.mu.Unlock()
}

// Recv receives the oldest step's tokens from the client it went through, which fails if
// the node has closed that client since (a stage was replaced).
func (d *downstream) Recv(ctx context.Context) ([]int, error) {
	if len(d.sent) == 0 {
		d.failed()
		return nil, errNoPipeline
	}
	c := d.sent[0]
	d.sent = slices.Delete(d.sent, 0, 1) // in place: the queue keeps its array
	tokens, err := c.Recv(ctx)
	if err != nil {
		d.failed() // the session ended with every step in it
		return nil, err
	}
	d.mu.Lock()
	d.clean = false // the prefix cache holds this session's blocks now
	d.mu.Unlock()
	d.closeRetired()
	return tokens, nil
}

// Have asks the current session's stages which disk-held keys they hold.
func (d *downstream) Have(ctx context.Context, keys []blocks.BlockHash) (int, error) {
	d.mu.Lock()
	c := d.client
	d.mu.Unlock()
	if c == nil {
		return 0, errNoPipeline
	}
	return c.Have(ctx, keys)
}

// close closes every client; the engine has shut down.
func (d *downstream) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client != nil {
		d.client.Close()
		d.client = nil
	}
	for _, c := range d.retired {
		c.Close()
	}
	d.retired = nil
}
