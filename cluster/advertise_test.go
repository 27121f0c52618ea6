package cluster

import (
	"net"
	"testing"
)

func TestAdvertiseAddr(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name, listen, advertise, gossip, want string
	}{
		{"listen host kept", "127.0.0.1:9000", "", "10.0.0.5:7946", "127.0.0.1:9000"},
		{"advertise wins", "0.0.0.0:9000", "worker-1", "10.0.0.5:7946", "worker-1:9000"},
		{"advertise over a specific host", "127.0.0.1:9000", "10.1.2.3", "", "10.1.2.3:9000"},
		{"unspecified v4 takes gossip IP", "0.0.0.0:9000", "", "10.0.0.5:7946", "10.0.0.5:9000"},
		{"unspecified v6 takes gossip IP", "[::]:9000", "", "10.0.0.5:7946", "10.0.0.5:9000"},
		{"v6 advertise", "[::]:9000", "fd00::1", "", "[fd00::1]:9000"},
		{"no gossip yet keeps listen", "0.0.0.0:9000", "", "", "0.0.0.0:9000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AdvertiseAddr(tcp(tc.listen), tc.advertise, tc.gossip); got != tc.want {
				t.Errorf("AdvertiseAddr(%s, %q, %q) = %q, want %q", tc.listen, tc.advertise, tc.gossip, got, tc.want)
			}
		})
	}
}

func TestAdvertiseGossip(t *testing.T) {
	for _, tc := range []struct {
		bind, advertise, want string
	}{
		{"0.0.0.0", "10.0.0.5", "10.0.0.5"},
		{"", "10.0.0.5", "10.0.0.5"},
		{"0.0.0.0", "worker-1", ""}, // a name: memberlist needs an IP
		{"127.0.0.1", "10.0.0.5", ""},
		{"0.0.0.0", "", ""},
	} {
		c := Config{BindAddr: tc.bind}
		c.AdvertiseGossip(tc.advertise)
		if c.AdvertiseAddr != tc.want {
			t.Errorf("bind %q advertise %q: AdvertiseAddr %q, want %q", tc.bind, tc.advertise, c.AdvertiseAddr, tc.want)
		}
	}
}
