// Package leader is the gRPC API between a router and a pipeline's leader, the first
// stage, which runs the pipeline's scheduler (package engine). Server serves an engine
// as the Leader service of proto/kvmesh/v1 (Generate, Status) together with the
// standard gRPC health service; Client calls one leader and is an api.Generator, so the
// HTTP API runs on top of a remote leader exactly as on a local engine.
//
//	srv, _ := leader.NewServer(eng, cfg)      // eng: *engine.Engine
//	go srv.Serve(ln)
//	c, _ := leader.Dial(ctx, addr, leader.DefaultClientConfig())
//	events, err := c.Submit(ctx, req)          // as engine.Engine.Submit
//
// # Contract
//
//   - Submit returns once the leader has queued the request (the leader sends the
//     response header then) or with its refusal. Errors keep their meaning across the
//     wire: the engine's sentinels travel as gRPC codes with an ErrorInfo reason
//     (ErrQueueFull as RESOURCE_EXHAUSTED, ErrTooLong and ErrInvalid as
//     INVALID_ARGUMENT, ErrClosed as UNAVAILABLE) and the client wraps the same sentinel
//     again, so errors.Is works on its errors and the HTTP layer answers 429, 400, 503.
//     A failure inside the leader's engine comes back as ErrFailed, and a request for
//     another model than the leader's (ClientConfig.Model) as ErrWrongModel, logged by
//     the leader.
//   - A request's events are the engine's, in the engine's order; the channel closes
//     after the last. On the wire one reply carries every event the engine has handed
//     out when the leader sends (one step of all samples, as a rule; at most 256), so n
//     samples cost one message per step; nothing is held back to fill a reply. A request that the leader ended with an error ends with Event{Err}
//     wrapping the sentinel. A stream that broke ends with Event{Err} wrapping
//     ErrBroken: the request's fate on the leader is unknown and the caller may resume it
//     elsewhere (engine.Request.Resumed). Cancelling the caller's ctx ends the channel
//     with the context's error instead, never ErrBroken.
//   - Dial checks the leader with a Status call and fails with ErrUnreachable (nothing
//     listening, TLS refused) or ErrWrongModel. Afterwards the connection reconnects by
//     itself, backing off up to ClientConfig.MaxReconnectDelay (1 s), so a leader
//     restarted at the same address is found again; Close ends open streams with
//     ErrBroken.
//   - Cancelling the call cancels the engine request: the server's stream context is the
//     request's context, so the engine frees the request's KV blocks. A client that
//     vanishes without closing its connection is noticed by the server's keepalive
//     pings (ServerConfig.PingInterval + PingTimeout, about 2 s by default).
//   - A dead leader is noticed on an open stream within ClientConfig.DeadAfter (2 s by
//     default): the client asks the leader for a heartbeat (an empty reply) whenever the
//     stream has been quiet for Heartbeat (500 ms), and gives up after DeadAfter without
//     any message. A reader slow to take events from a full buffer does not count as
//     silence. gRPC's own keepalive cannot do this: it raises client ping intervals
//     below 10 s to 10 s. A leader whose process dies is noticed at once, since its
//     kernel resets the connection. Idle connections are pinged by gRPC keepalive
//     (ClientConfig.PingInterval, PingTimeout).
//   - Health: the service "" and "kvmesh.v1.Leader" report SERVING while the engine's
//     Ready holds (polled every ServerConfig.HealthInterval) and NOT_SERVING from
//     Shutdown or Stop on.
//   - Shutdown is graceful (running streams finish until its ctx ends); Stop cuts every
//     connection at once. Neither shuts the engine down: it is the caller's.
//   - TLS is off by default. ServerConfig.TLS with a cert and key turns it on; adding a CA
//     file makes it mutual (clients must present a certificate that CA signed).
//     ClientConfig.TLS with a CA verifies the server, with a cert and key presents one.
//     Tests make their certificates with crypto/x509 (tls_test.go shows how).
//   - Bad input: the server never trusts the wire. Malformed requests reach the engine's
//     validation and come back as ErrInvalid; garbage bytes or an HTTP/1 request on the
//     port close that connection only; a handshake that does not finish within
//     HandshakeTimeout is dropped. The client checks every event (sample index, kind,
//     token id) and ends a stream that breaks the protocol with ErrBroken.
//
// The wire format and its evolution rules are in proto/kvmesh/v1/leader.proto.
package leader
