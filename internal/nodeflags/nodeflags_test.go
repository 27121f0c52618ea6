package nodeflags

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
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

func TestAdvertise(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f := Register(fs, "0.0.0.0:7946")
	if err := fs.Parse([]string{"--advertise", "10.0.0.7"}); err != nil {
		t.Fatal(err)
	}
	gc, err := f.Gossip()
	if err != nil || gc.AdvertiseAddr != "10.0.0.7" || f.Advertise() != "10.0.0.7" {
		t.Errorf("Gossip() = %+v, %v; Advertise() = %q", gc, err, f.Advertise())
	}
}

func TestHealthcheck(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if code := Healthcheck([]string{srv.URL}); code != 1 {
		t.Errorf("not ready: exit %d, want 1", code)
	}
	ready.Store(true)
	if code := Healthcheck([]string{srv.URL}); code != 0 {
		t.Errorf("ready: exit %d, want 0", code)
	}
	srv.Close()
	if code := Healthcheck([]string{srv.URL}); code != 1 {
		t.Errorf("nothing listening: exit %d, want 1", code)
	}
}

func TestNoArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--seeds=a,b", "--lan"}, true},
		{[]string{"--seeds=a", "b", "--lan"}, false}, // a YAML flow list split at the comma
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		Register(fs, "127.0.0.1:0")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := NoArgs(fs); (err == nil) != tc.ok {
			t.Errorf("%q: NoArgs = %v, want ok %v", tc.args, err, tc.ok)
		}
	}
}
