// Package nodeflags declares the command-line flags that every kvmesh cluster binary
// shares (cmd/node and cmd/router): membership, NATS credentials and gRPC TLS, each with
// its environment-variable default where it is a secret.
package nodeflags

import (
	"flag"
	"os"

	"github.com/kvmesh/kvmesh/cluster"
	"github.com/kvmesh/kvmesh/kvindex"
	"github.com/kvmesh/kvmesh/leader"
)

// Flags holds the shared flags once registered; read them after the flag set is parsed.
type Flags struct {
	gossip, seeds, key     *string
	lan                    *bool
	natsUser, natsPassword *string
	tlsCert, tlsKey, tlsCA *string
	tlsServerName          *string
}

// Register declares the shared flags on fs; gossip is the default membership address.
func Register(fs *flag.FlagSet, gossip string) *Flags {
	return &Flags{
		gossip:       fs.String("gossip", gossip, "membership bind address host:port (port 0: any)"),
		seeds:        fs.String("seeds", "", "comma-separated membership seeds (host:port or DNS names)"),
		key:          fs.String("gossip-key", os.Getenv("KVMESH_GOSSIP_KEY"), "gossip encryption key (16, 24 or 32 bytes; env KVMESH_GOSSIP_KEY)"),
		lan:          fs.Bool("lan", false, "LAN failure-detection timings (default: local, fast)"),
		natsUser:     fs.String("nats-user", os.Getenv("KVMESH_NATS_USER"), "NATS user (env KVMESH_NATS_USER)"),
		natsPassword: fs.String("nats-password", os.Getenv("KVMESH_NATS_PASSWORD"), "NATS password (env KVMESH_NATS_PASSWORD)"),
		tlsCert:      fs.String("tls-cert", "", "gRPC TLS certificate `file` (scripts/certs.sh makes test ones)"),
		tlsKey:       fs.String("tls-key", "", "gRPC TLS private key `file`"),
		tlsCA:        fs.String("tls-ca", "", "CA `file` that verifies peers (mutual TLS)"),
		tlsServerName: fs.String("tls-server-name", "", "name to verify in every peer's certificate "+
			"(default: the host of the dialled address; set it when nodes are dialled by IPs their certificates do not name, as on Kubernetes)"),
	}
}

// Gossip is the membership configuration the flags describe.
func (f *Flags) Gossip() (cluster.Config, error) {
	return cluster.ConfigFor(*f.gossip, *f.seeds, *f.key, *f.lan)
}

// NATS is the NATS credentials.
func (f *Flags) NATS() kvindex.ClientConfig {
	return kvindex.ClientConfig{User: *f.natsUser, Password: *f.natsPassword}
}

// TLS is the gRPC TLS configuration (off when no file is named).
func (f *Flags) TLS() leader.TLS {
	return leader.TLS{CertFile: *f.tlsCert, KeyFile: *f.tlsKey, CAFile: *f.tlsCA, ServerName: *f.tlsServerName}
}
