package shard

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

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/engine"
)

// writeCerts writes a CA and a leaf certificate for 127.0.0.1, good for both server and
// client authentication, into dir: ca.pem, node.pem, node.key.
func writeCerts(t testing.TB, dir string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	caKey, nodeKey := key(), key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kvmesh test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	node := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	nodeDER, err := x509.CreateCertificate(rand.Reader, node, ca, &nodeKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("node.pem", "CERTIFICATE", nodeDER)
	write("node.key", "EC PRIVATE KEY", keyDER)
}

// TestStageTLS: a pipeline over mutual TLS serves the reference; a leader without a
// client certificate, or without TLS, cannot open a session.
func TestStageTLS(t *testing.T) {
	m := loadModel(t)
	dir := t.TempDir()
	writeCerts(t, dir)
	mtls := TLS{CertFile: filepath.Join(dir, "node.pem"), KeyFile: filepath.Join(dir, "node.key"), CAFile: filepath.Join(dir, "ca.pem")}
	last := startStageWith(t, StageServerConfig{Model: m, Range: Range{3, 5}, TLS: mtls}, "127.0.0.1:0")
	mid := startStageWith(t, StageServerConfig{Model: m, Range: Range{2, 3}, TLS: mtls}, "127.0.0.1:0")
	dial := func(tls TLS) (*StageClient, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return DialPipeline(ctx, PipelineConfig{Stages: []string{mid.addr, last.addr}, Model: m.Identity(), FirstLayer: 2,
			BlockSize: 16, NumBlocks: 64, KVDType: blocks.FP32, TLS: tls, HelloTimeout: 500 * time.Millisecond, Logger: quiet})
	}
	for _, tt := range []struct {
		name string
		tls  TLS
	}{
		{"no client certificate", TLS{CAFile: mtls.CAFile}},
		{"plaintext", TLS{}},
	} {
		if c, err := dial(tt.tls); !errors.Is(err, ErrStageBroken) {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s: got %v, want ErrStageBroken", tt.name, err)
		}
	}
	c, err := dial(mtls)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, err := engine.New(m, engine.Config{BlockSize: 16, NumBlocks: 64, LeaderLayers: 2, Downstream: c, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	submitAll(t, e, referenceCases(t)[:3])
}
