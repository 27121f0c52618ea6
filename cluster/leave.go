package cluster

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Leave notices. memberlist does not tell its event delegate whether a node left or
// died, so Leave first sends every other alive node a notice over TCP (a memberlist user
// message, encrypted like all gossip) and waits for their acks before gossiping the leave
// itself. A node records the notice before it acks, so every node that acked reports
// Leave; one that did not ack in time may report Dead.
const (
	// msgLeave, uvarint length and the leaving memberlist name, then its gossip address.
	msgLeave = 'L'
	// msgLeaveAck, then the acking memberlist name.
	msgLeaveAck = 'A'
)

// leaveNoticeTTL is how long a leave notice is remembered, waiting for the leave itself.
const leaveNoticeTTL = time.Minute

func encodeLeave(name, addr string) []byte {
	b := []byte{msgLeave}
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	return append(b, addr...)
}

func decodeLeave(b []byte) (name, addr string, ok bool) {
	if len(b) < 2 || b[0] != msgLeave {
		return "", "", false
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n == 0 || n > uint64(len(b)-1-k) {
		return "", "", false
	}
	rest := b[1+k:]
	return string(rest[:n]), string(rest[n:]), true
}

// handleMsg takes a user message from memberlist: a leave notice is recorded and acked
// (from a goroutine, since memberlist's receive path must not block), an ack is counted.
// Anything else is ignored.
func (m *Member) handleMsg(b []byte) {
	if len(b) > 1 && b[0] == msgLeaveAck {
		m.mu.Lock()
		if m.acked != nil {
			m.acked[string(b[1:])] = true
			select {
			case m.ackWake <- struct{}{}:
			default:
			}
		}
		m.mu.Unlock()
		return
	}
	name, addr, ok := decodeLeave(b)
	if !ok {
		return
	}
	host, portStr, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	port, perr := strconv.ParseUint(portStr, 10, 16)
	if err != nil || ip == nil || perr != nil {
		return
	}
	now := time.Now()
	m.mu.Lock()
	for n, t := range m.leaving {
		if now.Sub(t) > leaveNoticeTTL {
			delete(m.leaving, n)
		}
	}
	m.leaving[name] = now
	m.mu.Unlock()
	go func() {
		select {
		case <-m.ready:
		case <-m.stop:
			return
		}
		to := &memberlist.Node{Name: name, Addr: ip, Port: uint16(port)}
		if err := m.ml.SendReliable(to, append([]byte{msgLeaveAck}, m.name...)); err != nil {
			m.log.Debug("cluster: leave ack not delivered", "to", name, "err", err)
		}
	}()
}

// sendLeaveNotices tells every other alive node that this incarnation is leaving and
// waits until all have acked or the wait runs out: half the time left to ctx's deadline
// (the rest is for gossiping the leave), or StreamTimeout when ctx has none.
func (m *Member) sendLeaveNotices(ctx context.Context) {
	peers := m.peerNodes()
	if len(peers) == 0 {
		return
	}
	m.mu.Lock()
	m.acked, m.ackWake = map[string]bool{}, make(chan struct{}, 1)
	wake := m.ackWake
	m.mu.Unlock()
	msg := encodeLeave(m.name, m.Addr())
	for _, n := range peers {
		go func() { // ends within StreamTimeout, also after the member shuts down
			if err := m.ml.SendReliable(n, msg); err != nil {
				m.log.Debug("cluster: leave notice not delivered", "to", n.Name, "err", err)
			}
		}()
	}
	wait := m.cfg.StreamTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl) / 2
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		m.mu.Lock()
		missing := 0
		for _, n := range peers {
			if !m.acked[n.Name] {
				missing++
			}
		}
		m.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			m.log.Warn("cluster: leaving before every node acked the leave notice; they will report this node dead", "missing", missing, "err", ctx.Err())
			return
		case <-timer.C:
			m.log.Warn("cluster: leaving before every node acked the leave notice; they will report this node dead", "missing", missing, "waited", wait)
			return
		}
	}
}
