package grpctls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ErrFiles: the named files cannot make TLS credentials (missing, not PEM, a server
// without its key pair).
var ErrFiles = errors.New("grpctls: unusable TLS files")

// Files names the PEM files of one side of a connection. All empty (the default) means
// plain TCP without encryption.
type Files struct {
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

// Off reports whether f names no files: plain TCP.
func (f Files) Off() bool { return f.CertFile == "" && f.KeyFile == "" && f.CAFile == "" }

// ServerCredentials returns the transport credentials of a server.
func (f Files) ServerCredentials() (credentials.TransportCredentials, error) {
	if f.Off() {
		return insecure.NewCredentials(), nil
	}
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, fmt.Errorf("%w: a TLS server needs its cert and key files", ErrFiles)
	}
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	if cfg.RootCAs != nil {
		cfg.ClientCAs, cfg.RootCAs = cfg.RootCAs, nil
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(cfg), nil
}

// ClientCredentials returns the transport credentials of a client.
func (f Files) ClientCredentials() (credentials.TransportCredentials, error) {
	if f.Off() {
		return insecure.NewCredentials(), nil
	}
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	cfg.ServerName = f.ServerName
	return credentials.NewTLS(cfg), nil
}

// config loads the files: the certificate (if named) and the CA pool (if named) as
// RootCAs.
func (f Files) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	if f.CertFile != "" || f.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFiles, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFiles, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: no PEM certificate in %s", ErrFiles, f.CAFile)
		}
	}
	return cfg, nil
}
