// Package garbage makes the hostile inputs that tests throw at a node's ports: random
// bytes, memberlist packets that start with a valid type byte and go wrong after it, and
// HTTP/2 connections that open well and then send junk frames or junk gRPC messages. The
// payloads are a pure function of the seed, so a failure reproduces.
package garbage
