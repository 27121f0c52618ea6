package grpctls

import (
	"errors"
	"testing"
)

// TestFiles: no files is plain TCP on both sides; files that cannot make credentials fail
// with ErrFiles. (Credentials from real certificates are tested where they are used:
// leader's and shard's TLS tests run mutual TLS end to end.)
func TestFiles(t *testing.T) {
	for _, tt := range []struct {
		name           string
		f              Files
		server, client bool // succeeds
	}{
		{"off", Files{}, true, true},
		{"server name alone is still off", Files{ServerName: "x"}, true, true},
		{"CA without a key pair", Files{CAFile: "testdata/missing.pem"}, false, false},
		{"cert without a key", Files{CertFile: "testdata/missing.pem"}, false, false},
		{"missing key pair", Files{CertFile: "testdata/missing.pem", KeyFile: "testdata/missing.pem"}, false, false},
	} {
		if _, err := tt.f.ServerCredentials(); (err == nil) != tt.server || (err != nil && !errors.Is(err, ErrFiles)) {
			t.Errorf("%s: ServerCredentials() error %v, want success %v", tt.name, err, tt.server)
		}
		if _, err := tt.f.ClientCredentials(); (err == nil) != tt.client || (err != nil && !errors.Is(err, ErrFiles)) {
			t.Errorf("%s: ClientCredentials() error %v, want success %v", tt.name, err, tt.client)
		}
		if c, err := tt.f.ServerCredentials(); err == nil && tt.f.Off() && c.Info().SecurityProtocol != "insecure" {
			t.Errorf("%s: security %q, want insecure", tt.name, c.Info().SecurityProtocol)
		}
	}
}
