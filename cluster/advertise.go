package cluster

import (
	"net"
)

// AdvertiseAddr returns the host:port other nodes reach a server of this node at (its
// gRPC or HTTP server), for Meta.GRPCAddr and Meta.HTTPAddr. listen is the address the
// server is bound to (its port is kept); the host is advertise when set, else the listen
// host, else (the listen host unspecified: 0.0.0.0, :: or empty) the host of gossip, the
// address this node's membership advertises (Member.Addr).
func AdvertiseAddr(listen net.Addr, advertise, gossip string) string {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	switch {
	case advertise != "":
		host = advertise
	case unspecified(host):
		if g, _, err := net.SplitHostPort(gossip); err == nil {
			host = g
		}
	}
	return net.JoinHostPort(host, port)
}

// unspecified reports whether host binds every interface.
func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// AdvertiseGossip sets c.AdvertiseAddr to advertise when that is an IP and c binds every
// interface, so that gossip and the node's servers advertise the same address. A host
// name, or a specific bind address, leaves c as it is: memberlist advertises an IP.
func (c *Config) AdvertiseGossip(advertise string) {
	if ip := net.ParseIP(advertise); ip != nil && unspecified(c.BindAddr) && c.AdvertiseAddr == "" {
		c.AdvertiseAddr = ip.String()
	}
}
