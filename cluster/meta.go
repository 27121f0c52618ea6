package cluster

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/hashicorp/memberlist"
)

// Role is what a node does in the cluster.
type Role string

// The roles.
const (
	RoleRouter Role = "router" // serves the HTTP API and routes requests to pipelines
	RoleWorker Role = "worker" // holds a layer range of the model
)

// State is where a node is in its life.
type State string

// The states, in the order a node passes through them.
const (
	StateLoading  State = "loading"  // up, not serving yet (loading weights, joining a pipeline)
	StateReady    State = "ready"    // serving
	StateDraining State = "draining" // finishing its requests, takes no new ones
)

// MaxMetaSize is the largest encoded Meta, in bytes: memberlist's limit on node metadata.
const MaxMetaSize = memberlist.MetaMaxSize

// metaVersion is the first byte of every encoded Meta. A decoder accepts its own version
// exactly, an earlier one (its missing fields left zero: version 1 has no Memory), and a
// later version by reading the fields it knows and ignoring the bytes after them: later
// versions only append fields.
const metaVersion = 2

// minMetaVersion is the oldest encoding a decoder accepts.
const minMetaVersion = 1

// Meta is the compact description every node gossips about itself. It is encoded in at
// most MaxMetaSize bytes (about 400 bytes are left for the strings after the numbers).
type Meta struct {
	ID          string // node id, unique in the cluster, e.g. "worker-1"
	Role        Role
	Incarnation uint64 // differs on every process start (Join fills in the start time in ns when 0)
	GRPCAddr    string // host:port of the node's gRPC server
	HTTPAddr    string // host:port of the node's HTTP server, if any
	Model       string // model identity (hex)
	First, Last int    // layer range [First, Last); workers only, both 0 while unassigned
	Pipeline    string // pipeline the worker belongs to; "" while unassigned
	FreeBlocks  int    // free KV blocks
	TotalBlocks int    // all KV blocks
	QueueDepth  int    // requests waiting
	State       State
	Memory      int // MiB the worker offers for weights and KV cache (placement balances by it); 0 unknown
}

var (
	roleCodes  = []Role{RoleRouter, RoleWorker}                   // code = index+1
	stateCodes = []State{StateLoading, StateReady, StateDraining} // code = index+1
)

func code[T comparable](codes []T, v T) byte {
	for i, c := range codes {
		if c == v {
			return byte(i + 1)
		}
	}
	return 0
}

// validate reports whether m can be gossiped.
func (m Meta) validate() error {
	switch {
	case m.ID == "":
		return fmt.Errorf("%w: empty ID", ErrBadMeta)
	case code(roleCodes, m.Role) == 0:
		return fmt.Errorf("%w: node %q: unknown role %q", ErrBadMeta, m.ID, m.Role)
	case code(stateCodes, m.State) == 0:
		return fmt.Errorf("%w: node %q: unknown state %q", ErrBadMeta, m.ID, m.State)
	case m.First < 0 || m.Last < 0 || m.FreeBlocks < 0 || m.TotalBlocks < 0 || m.QueueDepth < 0 || m.Memory < 0:
		return fmt.Errorf("%w: node %q: negative count", ErrBadMeta, m.ID)
	case m.Last > math.MaxInt32 || m.TotalBlocks > math.MaxInt32 || m.QueueDepth > math.MaxInt32 || m.Memory > math.MaxInt32:
		return fmt.Errorf("%w: node %q: count above 2^31-1", ErrBadMeta, m.ID)
	case m.First > m.Last:
		return fmt.Errorf("%w: node %q: layer range [%d, %d)", ErrBadMeta, m.ID, m.First, m.Last)
	case m.FreeBlocks > m.TotalBlocks:
		return fmt.Errorf("%w: node %q: %d free of %d blocks", ErrBadMeta, m.ID, m.FreeBlocks, m.TotalBlocks)
	}
	return nil
}

// encodeMeta returns m's wire form: the version byte, then each field in declaration
// order, strings as a uvarint length and bytes, numbers as uvarints, Role and State as
// one byte each. Memory, appended in version 2, comes after State.
func encodeMeta(m Meta) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64+len(m.ID)+len(m.GRPCAddr)+len(m.HTTPAddr)+len(m.Model)+len(m.Pipeline))
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(n int) { b = binary.AppendUvarint(b, uint64(n)) }
	b = append(b, metaVersion)
	str(m.ID)
	b = append(b, code(roleCodes, m.Role))
	b = binary.AppendUvarint(b, m.Incarnation)
	str(m.GRPCAddr)
	str(m.HTTPAddr)
	str(m.Model)
	num(m.First)
	num(m.Last)
	str(m.Pipeline)
	num(m.FreeBlocks)
	num(m.TotalBlocks)
	num(m.QueueDepth)
	b = append(b, code(stateCodes, m.State))
	num(m.Memory)
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: node %q: %d bytes, limit %d", ErrMetaTooLarge, m.ID, len(b), MaxMetaSize)
	}
	return b, nil
}

// metaReader reads the fields of an encoded Meta; the first error sticks.
type metaReader struct {
	b   []byte
	err error
}

func (r *metaReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or malformed %s", ErrBadMeta, what)
	}
}

func (r *metaReader) byte(what string) byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *metaReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *metaReader) int(what string) int {
	v := r.uvarint(what)
	if v > math.MaxInt32 {
		r.fail(what)
		return 0
	}
	return int(v)
}

func (r *metaReader) string(what string) string {
	n := r.uvarint(what)
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// decodeMeta parses the output of encodeMeta. It never panics and accepts only what
// encodeMeta can produce (of this version, version 1, or a later one), so a decoded Meta
// re-encodes.
func decodeMeta(b []byte) (Meta, error) {
	if len(b) > MaxMetaSize {
		return Meta{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMetaTooLarge, len(b), MaxMetaSize)
	}
	r := metaReader{b: b}
	v := r.byte("version")
	if r.err == nil && v < minMetaVersion {
		return Meta{}, fmt.Errorf("%w: version %d", ErrBadMeta, v)
	}
	var m Meta
	m.ID = r.string("ID")
	role := r.byte("role")
	m.Incarnation = r.uvarint("incarnation")
	m.GRPCAddr = r.string("gRPC address")
	m.HTTPAddr = r.string("HTTP address")
	m.Model = r.string("model")
	m.First = r.int("first layer")
	m.Last = r.int("last layer")
	m.Pipeline = r.string("pipeline")
	m.FreeBlocks = r.int("free blocks")
	m.TotalBlocks = r.int("total blocks")
	m.QueueDepth = r.int("queue depth")
	state := r.byte("state")
	if v >= 2 {
		m.Memory = r.int("memory")
	}
	if r.err != nil {
		return Meta{}, r.err
	}
	if v <= metaVersion && len(r.b) != 0 {
		return Meta{}, fmt.Errorf("%w: %d trailing bytes", ErrBadMeta, len(r.b))
	}
	if role == 0 || int(role) > len(roleCodes) {
		return Meta{}, fmt.Errorf("%w: node %q: unknown role code %d", ErrBadMeta, m.ID, role)
	}
	if state == 0 || int(state) > len(stateCodes) {
		return Meta{}, fmt.Errorf("%w: node %q: unknown state code %d", ErrBadMeta, m.ID, state)
	}
	m.Role, m.State = roleCodes[role-1], stateCodes[state-1]
	if err := m.validate(); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// nodeName is the memberlist name of one incarnation of a node. A restarted node is a
// new memberlist node, so memberlist never sees two addresses for one name.
func nodeName(m Meta) string {
	return m.ID + "#" + strconv.FormatUint(m.Incarnation, 16)
}
