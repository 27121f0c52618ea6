package leader

import (
	"fmt"

	"google.golang.org/grpc/credentials"

	"github.com/kvmesh/kvmesh/internal/grpctls"
)

// TLS names the PEM files of one side of a connection (grpctls.Files). All empty (the
// default) means plain TCP without encryption.
type TLS = grpctls.Files

// serverCredentials returns the transport credentials of a server; errors wrap ErrConfig.
func serverCredentials(t TLS) (credentials.TransportCredentials, error) {
	creds, err := t.ServerCredentials()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return creds, nil
}

// clientCredentials returns the transport credentials of a client; errors wrap ErrConfig.
func clientCredentials(t TLS) (credentials.TransportCredentials, error) {
	creds, err := t.ClientCredentials()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return creds, nil
}
