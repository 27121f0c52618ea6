// Package testcert makes throwaway certificate authorities and the certificates they sign,
// as PEM files, for the tests that run gRPC over mutual TLS (leader, shard, the Kubernetes
// manifests' probe test).
//
// Invariants: every key is a fresh P-256 key; certificates are valid from an hour ago to a
// day ahead; a leaf is good for both server and client authentication and names exactly
// the hosts it was issued for; files are written 0600.
package testcert
