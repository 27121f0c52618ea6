package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// TestIssue: an issued pair loads, chains to its authority, and names exactly its hosts.
func TestIssue(t *testing.T) {
	dir := t.TempDir()
	ca := New(t, dir, "cluster")
	for _, tt := range []struct {
		hosts []string
		ok    string // a name the certificate verifies for
		bad   string // one it does not
	}{
		{nil, "127.0.0.1", "kvmesh-node"},
		{[]string{"kvmesh-node"}, "kvmesh-node", "127.0.0.1"},
	} {
		certFile, keyFile := ca.Issue(t, "leaf", tt.hosts...)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		pem, err := os.ReadFile(ca.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: tt.ok}); err != nil {
			t.Errorf("hosts %v: does not verify for %s: %v", tt.hosts, tt.ok, err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: tt.bad}); err == nil {
			t.Errorf("hosts %v: verifies for %s", tt.hosts, tt.bad)
		}
	}
}
