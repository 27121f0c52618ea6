package cluster

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ConfigFor builds the Config of a node's command line: bind is host:port (port 0: any),
// seeds a comma-separated list of host:port or DNS names, key the gossip key (empty: no
// encryption), and lan picks DefaultConfig's timings over LocalConfig's.
func ConfigFor(bind, seeds, key string, lan bool) (Config, error) {
	c := LocalConfig()
	if lan {
		c = DefaultConfig()
	}
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return c, fmt.Errorf("%w: gossip address %q: %v", ErrBadConfig, bind, err)
	}
	if c.BindPort, err = strconv.Atoi(port); err != nil {
		return c, fmt.Errorf("%w: gossip port %q: %v", ErrBadConfig, port, err)
	}
	c.BindAddr = host
	for _, s := range strings.Split(seeds, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.Seeds = append(c.Seeds, s)
		}
	}
	if key != "" {
		c.SecretKey = []byte(key)
	}
	return c, nil
}

// SameModel is a Config.Accept that refuses a peer serving another model than identity.
func SameModel(identity string) func(peer Meta) error {
	return func(peer Meta) error {
		if peer.Model != "" && peer.Model != identity {
			return fmt.Errorf("another model: node %s serves model %.12s, this node serves %.12s", peer.ID, peer.Model, identity)
		}
		return nil
	}
}
