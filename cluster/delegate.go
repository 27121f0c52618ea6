package cluster

import (
	"fmt"
	"slices"

	"github.com/hashicorp/memberlist"
)

// maxRefusedLogged bounds the memory of refused nodes already logged.
const maxRefusedLogged = 1024

// delegate receives memberlist's callbacks. They run on memberlist's goroutines, the
// event callbacks (NotifyJoin, NotifyLeave, NotifyUpdate) one at a time with memberlist's
// node lock held: they take m.mu briefly and never block or call into memberlist.
type delegate struct{ m *Member }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate = (*delegate)(nil)
	_ memberlist.MergeDelegate = (*delegate)(nil)
)

// NodeMeta returns this node's encoded Meta (at most MaxMetaSize bytes: Join and
// Update refuse larger ones).
func (d *delegate) NodeMeta(limit int) []byte {
	d.m.metaMu.Lock()
	defer d.m.metaMu.Unlock()
	return d.m.metaBytes
}

// NotifyMsg handles leave notices and their acks (see leave.go).
func (d *delegate) NotifyMsg(b []byte) { d.m.handleMsg(b) }

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// check decodes a peer's Meta and applies Config.Accept; this node is always accepted.
func (d *delegate) check(n *memberlist.Node) (Meta, error) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		return Meta{}, err
	}
	if nodeName(meta) != n.Name {
		return Meta{}, fmt.Errorf("%w: memberlist name %q does not match ID %q incarnation %d", ErrBadMeta, n.Name, meta.ID, meta.Incarnation)
	}
	if n.Name == d.m.name || d.m.cfg.Accept == nil {
		return meta, nil
	}
	if err := d.m.cfg.Accept(meta); err != nil {
		return Meta{}, err
	}
	return meta, nil
}

// refuse logs, once per node and reason, that a node was kept out of the view.
func (d *delegate) refuse(n *memberlist.Node, err error) {
	reason := err.Error()
	d.m.mu.Lock()
	logged := d.m.refused[n.Name] == reason
	if !logged {
		if len(d.m.refused) >= maxRefusedLogged {
			clear(d.m.refused)
		}
		d.m.refused[n.Name] = reason
	}
	d.m.mu.Unlock()
	if !logged {
		d.m.log.Warn("cluster: refusing node", "peer", n.Name, "addr", n.Address(), "err", err)
	}
}

// NotifyAlive keeps a node whose Meta does not decode, or that Accept refuses, out of
// memberlist (and so out of the view).
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	if _, err := d.check(n); err != nil {
		d.refuse(n, err)
		return err
	}
	return nil
}

// NotifyMerge refuses to merge the state a join exchanged when it holds a node this
// one refuses, so two clusters that must not mix do not merge. On the joining side the
// join fails and the refusal is kept for Join to report; the seed's side merely drops
// the joiner's state (the joiner was already sent the seed's), and its alive messages
// are then vetoed one by one by NotifyAlive.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if _, err := d.check(n); err != nil {
			d.refuse(n, err)
			err = fmt.Errorf("%w: the other side holds node %q at %s: %w", ErrRefused, n.Name, n.Address(), err)
			d.m.mu.Lock()
			d.m.refusal = err
			d.m.mu.Unlock()
			return err
		}
	}
	return nil
}

func (d *delegate) NotifyJoin(n *memberlist.Node) {
	meta, err := decodeMeta(n.Meta)
	if err != nil { // NotifyAlive let only decodable nodes in
		d.m.log.Error("cluster: joined node has bad metadata", "peer", n.Name, "err", err)
		return
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	d.m.peers[n.Name] = gossipAddr{slices.Clone(n.Addr), n.Port}
	if ev, ok := d.m.view.join(n.Name, meta); ok {
		d.publishLocked(ev, n)
	}
}

func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		d.m.log.Error("cluster: updated node has bad metadata", "peer", n.Name, "err", err)
		return
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	d.m.peers[n.Name] = gossipAddr{slices.Clone(n.Addr), n.Port}
	if ev, ok := d.m.view.update(n.Name, meta); ok {
		d.publishLocked(ev, n)
	}
}

// NotifyLeave reports Leave for a node that sent a leave notice (or this node itself
// leaving) and Dead for any other.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	delete(d.m.peers, n.Name)
	kind := KindDead
	if _, ok := d.m.leaving[n.Name]; ok || (n.Name == d.m.name && d.m.closed.Load()) {
		kind = KindLeave
		delete(d.m.leaving, n.Name)
	}
	for _, ev := range d.m.view.remove(n.Name, kind) {
		d.publishLocked(ev, n)
	}
}

// publishLocked logs ev and queues it for every subscriber; m.mu must be held.
func (d *delegate) publishLocked(ev Event, n *memberlist.Node) {
	if n.Name != d.m.name && ev.Kind != KindUpdate {
		args := []any{"peer", ev.Meta.ID, "incarnation", ev.Meta.Incarnation, "addr", n.Address(), "role", ev.Meta.Role}
		if ev.Kind == KindDead {
			d.m.log.Warn("cluster: node dead", args...)
		} else {
			d.m.log.Info("cluster: node "+ev.Kind.String(), args...)
		}
	}
	for s := range d.m.subs {
		s.push(ev)
	}
}
