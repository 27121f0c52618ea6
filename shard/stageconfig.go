package shard

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/internal/grpctls"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/tensor"
)

// Sentinel errors of the stage transport (StageServer, StageClient).
var (
	// ErrStageRefused: a stage refused the session or a step: it holds another model,
	// its range does not start where the previous stage ends, the chain ends before the
	// model's last layer or goes past it, the session asks for more memory than it
	// allows, the session was replaced by a newer one, or a step was malformed.
	// Redialling the same chain does not help until the membership changes.
	ErrStageRefused = errors.New("shard: stage refused the session")
	// ErrStageBroken: a step or a Hello failed in transport: a stage died, fell silent
	// past the step timeout, or closed the stream. The next Step opens a new session.
	ErrStageBroken = errors.New("shard: stage connection broken")
	// ErrStageConfig: a StageServerConfig or PipelineConfig that cannot be used.
	ErrStageConfig = errors.New("shard: bad stage config")
)

// stageProtocol is the minor revision of kvmesh.v1's Stage service this package speaks.
const stageProtocol = 2

// StageServerConfig configures a StageServer. Zero values take the documented defaults.
type StageServerConfig struct {
	// Model is the checkpoint the stage runs; its Identity must equal the leader's.
	// Required.
	Model *model.Model
	// Range is the stage's layers; First > 0 (layer 0 is the leader's). Required.
	Range Range
	// Pool runs the kernels of every session. Default: a pool of the server's own, one
	// thread per core, closed by Stop.
	Pool *tensor.Pool
	// TLS is the server's certificate (and, with CAFile, mutual TLS); a middle stage also
	// dials the next stage with it (CAFile verifies the next stage, CertFile/KeyFile are
	// presented to it). Default: off.
	TLS TLS
	// MaxKVBytes is the most memory the mirror KV cache of a session may take
	// (num_blocks × the bytes of one block of this stage's layers); a Hello asking for
	// more is refused (RESOURCE_EXHAUSTED), so a bad or hostile Hello cannot make the
	// worker allocate without bound. Default 4 GiB.
	MaxKVBytes int64
	// MaxTokens is the most tokens per step a session may ask for (it sizes the
	// Runner's buffers). Default 8192.
	MaxTokens int
	// HelloTimeout bounds a middle stage's Hello to the next stage. Default 5 s.
	HelloTimeout time.Duration
	// PingInterval is how long a connection may be idle before the server pings its
	// peer, and PingTimeout how long it waits for the answer before closing the
	// connection (which ends the session's stream). Defaults 1 s and 1 s (gRPC's floor).
	PingInterval, PingTimeout time.Duration
	// HandshakeTimeout bounds a new connection's handshake, so a peer that connects and
	// sends nothing, or garbage, is dropped. Default 10 s.
	HandshakeTimeout time.Duration
	// SwapPath is the bbolt file of the stage's disk tier: the K/V of its layers for the
	// prefix blocks the leader moves to disk. Empty (the default) turns it off; the leader
	// then recomputes what only its disk holds. The file is opened at the first Hello,
	// under an identity naming the model, the session's KV layout and this stage's range
	// (engine.SwapIdentity); a file of another is set aside with a log line.
	SwapPath string
	// SwapMaxBytes bounds the disk tier; 0 is unlimited. A full tier refuses new blocks,
	// which the leader then recomputes.
	SwapMaxBytes int64
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultStageServerConfig returns the defaults (Model and Range are left to the caller).
func DefaultStageServerConfig() StageServerConfig {
	return StageServerConfig{
		MaxKVBytes:       4 << 30,
		MaxTokens:        8192,
		HelloTimeout:     5 * time.Second,
		PingInterval:     time.Second,
		PingTimeout:      time.Second,
		HandshakeTimeout: 10 * time.Second,
		Logger:           slog.Default(),
	}
}

// validate fills zero fields with their defaults and rejects unusable ones.
func (c *StageServerConfig) validate() error {
	d := DefaultStageServerConfig()
	switch {
	case c.Model == nil:
		return fmt.Errorf("%w: no model", ErrStageConfig)
	case c.Range.First < 1 || c.Range.Last > c.Model.Config.Layers || c.Range.First >= c.Range.Last:
		return fmt.Errorf("%w: stage range %v of a %d-layer model (layer 0 is the leader's)", ErrStageConfig, c.Range, c.Model.Config.Layers)
	case c.MaxKVBytes < 0 || c.MaxTokens < 0 || c.SwapMaxBytes < 0:
		return fmt.Errorf("%w: negative MaxKVBytes, MaxTokens or SwapMaxBytes", ErrStageConfig)
	case c.HelloTimeout < 0 || c.PingInterval < 0 || c.PingTimeout < 0 || c.HandshakeTimeout < 0:
		return fmt.Errorf("%w: negative duration", ErrStageConfig)
	}
	if c.MaxKVBytes == 0 {
		c.MaxKVBytes = d.MaxKVBytes
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = d.MaxTokens
	}
	fillDuration(&c.HelloTimeout, d.HelloTimeout)
	fillDuration(&c.PingInterval, d.PingInterval)
	fillDuration(&c.PingTimeout, d.PingTimeout)
	fillDuration(&c.HandshakeTimeout, d.HandshakeTimeout)
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return nil
}

// PipelineConfig configures a StageClient: the chain of stages after a leader, and the
// session the leader opens on it. Zero values take the documented defaults.
type PipelineConfig struct {
	// Stages is the gRPC addresses (host:port) of the stages after the leader, in layer
	// order. Required.
	Stages []string
	// Model is the identity of the leader's checkpoint (model.Model.Identity); every
	// stage must hold the same. Required.
	Model string
	// FirstLayer is where the first later stage must start: the end of the leader's own
	// range (engine.Config.LeaderLayers). Required, > 0.
	FirstLayer int
	// BlockSize, NumBlocks and KVDType are the leader's KV cache geometry, which every
	// stage mirrors (engine.Config's). Required: BlockSize, NumBlocks > 0.
	BlockSize, NumBlocks int
	KVDType              blocks.DType
	// MaxTokens is the most tokens of one step; at least engine.Config.MaxBatchTokens.
	// Default 512.
	MaxTokens int
	// Pipeline names the pipeline in the stages' logs. Default: empty.
	Pipeline string
	// TLS is the CA that verifies the stages and, for mutual TLS, the leader's own
	// certificate. Default: off.
	TLS TLS
	// Heartbeat is how often every stage sends a heartbeat up the chain while it runs a
	// step, so that a long step (a large prefill on a large model) is told apart from a
	// dead stage. Default 250 ms; at least 50 ms.
	Heartbeat time.Duration
	// DeadAfter is how long a step may go without any message from the pipeline (its
	// reply or a heartbeat) before it fails (ErrStageBroken) and ends the session. It is
	// what notices a stage that hangs or a network that stops carrying packets without
	// closing the connection; a stage process that dies is noticed at once (its sockets
	// close). Must exceed Heartbeat. Default 2 s.
	DeadAfter time.Duration
	// HelloTimeout bounds opening a session (Hello through the whole chain), including
	// waiting for the connection to the first stage. Default 2 s.
	HelloTimeout time.Duration
	// Logger receives the client's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultPipelineConfig returns the defaults of the optional fields.
func DefaultPipelineConfig() PipelineConfig {
	return PipelineConfig{
		MaxTokens:    512,
		Heartbeat:    250 * time.Millisecond,
		DeadAfter:    2 * time.Second,
		HelloTimeout: 2 * time.Second,
		Logger:       slog.Default(),
	}
}

// validate fills zero fields with their defaults and rejects unusable ones.
func (c *PipelineConfig) validate() error {
	d := DefaultPipelineConfig()
	switch {
	case len(c.Stages) == 0:
		return fmt.Errorf("%w: no stages", ErrStageConfig)
	case c.Model == "":
		return fmt.Errorf("%w: no model identity", ErrStageConfig)
	case c.FirstLayer < 1:
		return fmt.Errorf("%w: first layer %d of the later stages (the leader holds layer 0)", ErrStageConfig, c.FirstLayer)
	case c.BlockSize < 1 || c.NumBlocks < 1:
		return fmt.Errorf("%w: block size %d, %d blocks", ErrStageConfig, c.BlockSize, c.NumBlocks)
	case !validDType(c.KVDType):
		return fmt.Errorf("%w: KV dtype %v", ErrStageConfig, c.KVDType)
	case c.MaxTokens < 0 || c.Heartbeat < 0 || c.DeadAfter < 0 || c.HelloTimeout < 0:
		return fmt.Errorf("%w: negative MaxTokens or duration", ErrStageConfig)
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = d.MaxTokens
	}
	fillDuration(&c.Heartbeat, d.Heartbeat)
	fillDuration(&c.DeadAfter, d.DeadAfter)
	fillDuration(&c.HelloTimeout, d.HelloTimeout)
	if c.Heartbeat < minHeartbeatMS*time.Millisecond || c.DeadAfter <= c.Heartbeat {
		return fmt.Errorf("%w: Heartbeat %v (at least %d ms) must be below DeadAfter %v", ErrStageConfig, c.Heartbeat, minHeartbeatMS, c.DeadAfter)
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return nil
}

// validDType reports whether d is a storage type blocks knows.
func validDType(d blocks.DType) bool {
	_, err := blocks.ParseDType(d.String())
	return err == nil
}

func fillDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// TLS names the PEM files of one side of a stage connection (grpctls.Files), as
// leader.TLS does. All empty (the default) means plain TCP without encryption.
type TLS = grpctls.Files

// stageCredentials wraps an error of grpctls in ErrStageConfig.
func stageCredentials(creds credentials.TransportCredentials, err error) (credentials.TransportCredentials, error) {
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStageConfig, err)
	}
	return creds, nil
}
