package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Join's retry backoff between rounds over the seeds: doubling from min to max.
const (
	minJoinBackoff = 100 * time.Millisecond
	maxJoinBackoff = 5 * time.Second
)

// splitSeed returns a seed's host and port (DefaultPort when it has none).
func splitSeed(seed string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(seed)
	if err != nil {
		// No port: the whole seed is the host (an IPv6 literal may come bracketed).
		host, portStr = seed, strconv.Itoa(DefaultPort)
		if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1]
		}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("%w: seed %q: want host:port or host", ErrBadConfig, seed)
	}
	return host, port, nil
}

// resolveSeeds resolves every seed to all of its addresses (IPv4 first) as "ip:port".
// Addresses that are this node are left out and reported by self. err joins the seeds
// that failed to resolve.
func (m *Member) resolveSeeds(ctx context.Context) (addrs []string, self bool, err error) {
	var errs []error
	for _, seed := range m.cfg.Seeds {
		host, port, err := splitSeed(seed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var ips []net.IP
		if ip := net.ParseIP(host); ip != nil {
			ips = []net.IP{ip}
		} else {
			ias, err := net.DefaultResolver.LookupIPAddr(ctx, host)
			if err != nil {
				errs = append(errs, fmt.Errorf("resolve seed %q: %w", seed, err))
				continue
			}
			for _, ia := range ias {
				ips = append(ips, ia.IP)
			}
			slices.SortStableFunc(ips, func(a, b net.IP) int {
				return cmp.Compare(len(b.To4()), len(a.To4())) // IPv4 (To4 of 4 bytes) first
			})
		}
		for _, ip := range ips {
			if m.isSelf(ip, port) {
				self = true
				continue
			}
			a := net.JoinHostPort(ip.String(), strconv.Itoa(port))
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs, self, errors.Join(errs...)
}

// isSelf reports whether ip:port reaches this node's gossip listener.
func (m *Member) isSelf(ip net.IP, port int) bool {
	if port != int(m.self.port) {
		return false
	}
	bind := net.ParseIP(m.cfg.BindAddr)
	return ip.Equal(m.self.ip) || ip.Equal(bind) || (ip.IsLoopback() && bind != nil && bind.IsUnspecified())
}

// joinSeeds joins the cluster through the seeds, retrying with backoff until one
// answers or ctx ends; when the seeds include this node and none other answers, it
// starts a cluster instead. It fails at once with ErrRefused when a seed's cluster holds a
// node that Config.Accept refuses.
func (m *Member) joinSeeds(ctx context.Context) error {
	if len(m.cfg.Seeds) == 0 {
		m.log.Info("cluster: no seeds, starting a new cluster")
		return nil
	}
	backoff := minJoinBackoff
	for attempt := 1; ; attempt++ {
		addrs, self, rerr := m.resolveSeeds(ctx)
		var jerr error
		if len(addrs) > 0 {
			m.mu.Lock()
			m.refusal = nil
			m.mu.Unlock()
			n, err := m.ml.Join(addrs)
			if n > 0 {
				m.log.Info("cluster: joined", "seeds_answered", n, "seed_addrs", len(addrs))
				return nil
			}
			m.mu.Lock()
			refusal := m.refusal
			m.mu.Unlock()
			if refusal != nil {
				return refusal
			}
			jerr = flatten(err)
		}
		if self && rerr == nil {
			// A seed list that names this node (a headless service listing every pod,
			// this one too) may name nodes not up yet: start, and let the rejoin loop
			// merge them in as they come.
			m.log.Info("cluster: no other seed answered and one seed is this node: starting a new cluster", "err", jerr)
			return nil
		}
		last := errors.Join(rerr, jerr)
		if last == nil {
			last = errors.New("seeds resolved to no address")
		}
		m.log.Warn("cluster: no seed answered, retrying", "attempt", attempt, "seeds", m.cfg.Seeds, "retry_in", backoff, "err", last)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: seeds %v, %d attempts (%w); last error: %w", ErrNoSeed, m.cfg.Seeds, attempt, ctx.Err(), last)
		case <-t.C:
		}
		backoff = min(2*backoff, maxJoinBackoff)
	}
}

// rejoinLoop joins, every RejoinInterval, the seed addresses that are not members yet.
func (m *Member) rejoinLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StreamTimeout)
		addrs, _, err := m.resolveSeeds(ctx)
		cancel()
		if err != nil {
			m.log.Debug("cluster: rejoin: resolving seeds", "err", err)
		}
		known := map[string]bool{}
		for _, n := range m.peerNodes() {
			known[n.Address()] = true
		}
		addrs = slices.DeleteFunc(addrs, func(a string) bool { return known[a] })
		if len(addrs) == 0 {
			continue
		}
		select {
		case <-m.stop:
			return
		default:
		}
		n, err := m.ml.Join(addrs)
		m.log.Debug("cluster: rejoin", "addrs", addrs, "answered", n, "err", err)
	}
}

// flatErr keeps an error for errors.Is and As but states it on one line: memberlist's
// Join returns a multi-line list ("1 error occurred:\n\t* ...").
type flatErr struct{ err error }

func flatten(err error) error {
	if err == nil {
		return nil
	}
	return flatErr{err}
}

func (e flatErr) Unwrap() error { return e.err }

func (e flatErr) Error() string {
	var parts []string
	for _, line := range strings.Split(e.err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
		if line != "" && !strings.HasSuffix(line, "errors occurred:") && !strings.HasSuffix(line, "error occurred:") {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}
