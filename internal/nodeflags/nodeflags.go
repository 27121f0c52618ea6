package nodeflags

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/kvmesh/kvmesh/cluster"
	"github.com/kvmesh/kvmesh/kvindex"
	"github.com/kvmesh/kvmesh/leader"
)

// Flags holds the shared flags once registered; read them after the flag set is parsed.
type Flags struct {
	gossip, seeds, key     *string
	advertise              *string
	lan                    *bool
	natsUser, natsPassword *string
	tlsCert, tlsKey, tlsCA *string
	tlsServerName          *string
}

// Register declares the shared flags on fs; gossip is the default membership address.
func Register(fs *flag.FlagSet, gossip string) *Flags {
	return &Flags{
		gossip: fs.String("gossip", gossip, "membership bind address host:port (port 0: any)"),
		seeds:  fs.String("seeds", "", "comma-separated membership seeds (host:port or DNS names)"),
		key:    fs.String("gossip-key", os.Getenv("KVMESH_GOSSIP_KEY"), "gossip encryption key (16, 24 or 32 bytes; env KVMESH_GOSSIP_KEY)"),
		advertise: fs.String("advertise", "", "host or IP other nodes reach this node's servers at "+
			"(default: the listen host, or the IP gossip advertises when that is 0.0.0.0 or ::)"),
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

// Gossip is the membership configuration the flags describe. An --advertise IP is also
// the address gossip advertises when gossip binds every interface.
func (f *Flags) Gossip() (cluster.Config, error) {
	c, err := cluster.ConfigFor(*f.gossip, *f.seeds, *f.key, *f.lan)
	c.AdvertiseGossip(*f.advertise)
	return c, err
}

// Advertise is the --advertise host ("" when not given): see cluster.AdvertiseAddr.
func (f *Flags) Advertise() string { return *f.advertise }

// NATS is the NATS credentials.
func (f *Flags) NATS() kvindex.ClientConfig {
	return kvindex.ClientConfig{User: *f.natsUser, Password: *f.natsPassword}
}

// TLS is the gRPC TLS configuration (off when no file is named).
func (f *Flags) TLS() leader.TLS {
	return leader.TLS{CertFile: *f.tlsCert, KeyFile: *f.tlsKey, CAFile: *f.tlsCA, ServerName: *f.tlsServerName}
}

// Healthcheck runs the `healthcheck [URL]` subcommand: it GETs URL (default
// http://127.0.0.1:8080/readyz) with a 3 s timeout and returns the process exit code, 0
// on status 200 and 1 otherwise, saying why on stderr. Container healthchecks call it.
func Healthcheck(args []string) int {
	url := "http://127.0.0.1:8080/readyz"
	if len(args) > 0 {
		url = args[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := probe(ctx, url); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, body)
	}
	return nil
}

// NoArgs fails when fs was given arguments that are not flags: the flag package stops at
// the first one and silently ignores every flag after it (a YAML list that splits
// "--seeds=a,b" at its comma once turned off NATS, gossip timings and the disk tier of
// every container this way).
func NoArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: every setting is a flag, and the flags after it would be ignored", fs.Arg(0))
	}
	return nil
}
