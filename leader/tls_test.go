package leader

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/engine"
)

// authority is a test certificate authority that issues certificates as PEM files.
type authority struct {
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	CAFile string
}

// newAuthority makes a self-signed CA and writes its certificate to dir/name-ca.pem.
func newAuthority(t *testing.T, dir, name string) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	a := &authority{dir: dir, cert: cert, key: key, CAFile: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, a.CAFile, "CERTIFICATE", der)
	return a
}

// issue makes a certificate for 127.0.0.1 (server and client use) signed by a and
// returns its cert and key files.
func (a *authority) issue(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(a.dir, name+".pem"), filepath.Join(a.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS: a leader with mutual TLS serves a client that has the right CA and a
// certificate from it, and refuses every other client.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, wrong := newAuthority(t, dir, "cluster"), newAuthority(t, dir, "stranger")
	srvCert, srvKey := ca.issue(t, "leader")
	cliCert, cliKey := ca.issue(t, "router")
	strangerCert, strangerKey := wrong.issue(t, "intruder")
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
	ca := newAuthority(t, dir, "cluster")
	cert, key := ca.issue(t, "leader")
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
