package frontend

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"testing"

	"github.com/kvmesh/kvmesh/cluster"
)

// TestAdvertise: a router listening on every interface gossips its HTTP API at the IP
// membership advertises, and at the --advertise host when one is given.
func TestAdvertise(t *testing.T) {
	for _, tc := range []struct{ advertise, wantHost string }{{"", ""}, {"router-1.example", "router-1.example"}} {
		ctx := context.Background()
		f, err := Start(ctx, Config{
			ID: "router-1", Model: "../models/stories260K.bin", Tokenizer: "../models/tok512.bin",
			HTTPAddr: "0.0.0.0:0", NATSListen: "127.0.0.1:0", Gossip: cluster.LocalConfig(),
			Advertise: tc.advertise, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		want := tc.wantHost
		if want == "" {
			want, _, _ = net.SplitHostPort(f.GossipAddr())
		}
		host, _, _ := net.SplitHostPort(f.member.Self().HTTPAddr)
		if host != want {
			t.Errorf("advertise %q: gossiped HTTP host %q, want %q", tc.advertise, host, want)
		}
		if u, _ := url.Parse(f.URL()); u == nil || u.Hostname() != want {
			t.Errorf("advertise %q: URL %q, want host %q", tc.advertise, f.URL(), want)
		}
		f.Shutdown(ctx)
	}
}
