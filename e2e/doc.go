// Package e2e holds the end-to-end tests of kvmesh with real processes: it builds
// cmd/router and cmd/node, starts clusters of them on loopback ports, drives them over
// HTTP as a client would, and kills processes with SIGKILL in the middle of generations.
//
// The Cluster type is the test helper that starts, lists and kills nodes; the container
// cluster's tests drive Docker through the same methods.
package e2e
