// Package nodeflags declares the command-line flags that every kvmesh cluster binary
// shares (cmd/node and cmd/router): membership, the advertised host, NATS credentials and
// gRPC TLS, each with its environment-variable default where it is a secret; and the
// `healthcheck URL` subcommand both binaries answer (a FROM-scratch image has no curl).
package nodeflags
