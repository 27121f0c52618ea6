package nodeflags

import (
	"flag"
	"testing"
)

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f := Register(fs, "127.0.0.1:0")
	err := fs.Parse([]string{"--seeds", "a:1,b:2", "--nats-user", "u", "--nats-password", "p",
		"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem", "--tls-server-name", "kvmesh-node", "--gossip", "127.0.0.1:7946"})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := f.Gossip()
	if err != nil || gc.BindPort != 7946 || len(gc.Seeds) != 2 {
		t.Errorf("Gossip() = %+v, %v", gc, err)
	}
	if n := f.NATS(); n.User != "u" || n.Password != "p" {
		t.Errorf("NATS() = %+v", n)
	}
	if tl := f.TLS(); tl.CertFile != "c.pem" || tl.KeyFile != "k.pem" || tl.CAFile != "ca.pem" || tl.ServerName != "kvmesh-node" {
		t.Errorf("TLS() = %+v", tl)
	}
}
