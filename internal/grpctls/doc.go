// Package grpctls turns the PEM files a node is given (--tls-cert, --tls-key, --tls-ca)
// into gRPC transport credentials, for every gRPC server and client of the cluster: the
// router's calls to leaders and a leader's calls down its pipeline.
//
// Invariants: Files that name nothing mean plain TCP on both sides; anything else is TLS
// 1.3 or newer. A server with a CA file requires and verifies client certificates (mutual
// TLS); a client with a CA file verifies the server against it, and otherwise against the
// system's roots. Every error wraps ErrFiles.
package grpctls
