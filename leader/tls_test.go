package leader

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/internal/testcert"
)

// TestTLS: a leader with mutual TLS serves a client that has the right CA and a
// certificate from it, and refuses every other client.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, wrong := testcert.New(t, dir, "cluster"), testcert.New(t, dir, "stranger")
	srvCert, srvKey := ca.Issue(t, "leader")
	cliCert, cliKey := ca.Issue(t, "router")
	strangerCert, strangerKey := wrong.Issue(t, "intruder")
	n := startNode(t, engine.Config{}, ServerConfig{TLS: TLS{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.CAFile}})

	c := dial(t, n.addr, ClientConfig{TLS: TLS{CAFile: ca.CAFile, CertFile: cliCert, KeyFile: cliKey}})
	greedy, _ := loadReference(t)
	res := run(t, c, requestOf(greedy[0]))
	if want, _ := expect(greedy[0]); res.err != nil || len(res.tokens[0]) != len(want) {
		t.Fatalf("over TLS: %v, %d tokens, want %d", res.err, len(res.tokens[0]), len(want))
	}

	for _, tc := range []struct {
		name string
		tls  TLS
	}{
		{"plain TCP", TLS{}},
		{"wrong CA", TLS{CAFile: wrong.CAFile, CertFile: cliCert, KeyFile: cliKey}},
		{"no client certificate", TLS{CAFile: ca.CAFile}},
		{"client certificate of another CA", TLS{CAFile: ca.CAFile, CertFile: strangerCert, KeyFile: strangerKey}},
		{"wrong server name", TLS{CAFile: ca.CAFile, CertFile: cliCert, KeyFile: cliKey, ServerName: "leader.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, n.addr, ClientConfig{TLS: tc.tls})
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if ctx.Err() != nil || !errors.Is(err, ErrUnreachable) {
				t.Errorf("got %v, want ErrUnreachable before the deadline", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestTLSConfig: unusable TLS settings are refused up front with ErrConfig.
func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.New(t, dir, "cluster")
	cert, key := ca.Issue(t, "leader")
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name   string
		server bool
		tls    TLS
	}{
		{"server CA without a cert", true, TLS{CAFile: ca.CAFile}},
		{"server cert without a key", true, TLS{CertFile: cert}},
		{"server key file missing", true, TLS{CertFile: cert, KeyFile: missing}},
		{"server CA file missing", true, TLS{CertFile: cert, KeyFile: key, CAFile: missing}},
		{"server CA file not PEM", true, TLS{CertFile: cert, KeyFile: key, CAFile: key}},
		{"client CA file missing", false, TLS{CAFile: missing}},
		{"client key missing", false, TLS{CAFile: ca.CAFile, CertFile: cert}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.server {
				_, err = serverCredentials(tc.tls)
			} else {
				_, err = Dial(context.Background(), "127.0.0.1:1", ClientConfig{TLS: tc.tls})
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
}
