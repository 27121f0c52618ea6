package leader

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLS names the PEM files of one side of a connection. All empty (the default) means
// plain TCP without encryption.
type TLS struct {
	// CertFile and KeyFile are this side's certificate chain and private key. A server
	// with TLS needs them; a client presents them for mutual TLS.
	CertFile, KeyFile string
	// CAFile holds the certificates of the authorities this side trusts. On a server it
	// turns on mutual TLS: every client must present a certificate signed by one of them.
	// On a client it verifies the server; empty means the system's roots.
	CAFile string
	// ServerName is the name a client verifies in the server's certificate. Default: the
	// host part of the dialled address.
	ServerName string
}

// serverCredentials returns the transport credentials of a server.
func (t TLS) serverCredentials() (credentials.TransportCredentials, error) {
	if t.CertFile == "" && t.KeyFile == "" {
		if t.CAFile != "" {
			return nil, fmt.Errorf("%w: a CA file for client certificates needs the server's own cert and key", ErrConfig)
		}
		return insecure.NewCredentials(), nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if t.CAFile != "" {
		if cfg.ClientCAs, err = loadPool(t.CAFile); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(cfg), nil
}

// clientCredentials returns the transport credentials of a client.
func (t TLS) clientCredentials() (credentials.TransportCredentials, error) {
	if t.CertFile == "" && t.KeyFile == "" && t.CAFile == "" {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS13}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if t.CAFile != "" {
		var err error
		if cfg.RootCAs, err = loadPool(t.CAFile); err != nil {
			return nil, err
		}
	}
	return credentials.NewTLS(cfg), nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: no PEM certificate in %s", ErrConfig, path)
	}
	return pool, nil
}
