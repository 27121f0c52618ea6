package garbage

import (
	"encoding/binary"
	"math/rand/v2"
)

// Bytes returns n pseudo-random bytes of r.
func Bytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Gossip returns hostile memberlist payloads, each for one UDP packet or one TCP stream:
// random bytes of many sizes, and each memberlist message type (and the encryption and
// label headers) followed by junk, including a truncated encrypted-looking packet and
// huge length prefixes.
func Gossip(seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 7))
	var out [][]byte
	for _, n := range []int{1, 2, 3, 7, 16, 64, 300, 1400, 4000} {
		out = append(out, Bytes(r, n))
	}
	for typ := range 16 { // ping .. errMsg, and a few past them
		for _, n := range []int{0, 1, 5, 40, 600} {
			out = append(out, append([]byte{byte(typ)}, Bytes(r, n)...))
		}
	}
	out = append(out,
		append([]byte{1}, Bytes(r, 12+3)...),                      // encryption version 1: nonce, then too short
		append([]byte{0, 0xff, 0xff, 0xff, 0xff}, Bytes(r, 8)...), // huge length prefix
		append([]byte{244, 200}, Bytes(r, 10)...),                 // label header longer than the packet
		[]byte{7, 255}, // compound message claiming 255 parts
		append([]byte{12, 0, 0, 0, 0}, Bytes(r, 20)...), // CRC header with a wrong CRC
	)
	return out
}

// preface is what an HTTP/2 client sends first.
const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types and flags used here (RFC 9113, section 6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePing         = 0x6
	frameWindowUpdate = 0x8
	frameContinuation = 0x9
	flagEndStream     = 0x1
	flagEndHeaders    = 0x4
)

// frame encodes one HTTP/2 frame: 9 header bytes (length, type, flags, stream), payload.
func frame(typ, flags byte, stream uint32, payload []byte) []byte {
	b := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags}
	b = binary.BigEndian.AppendUint32(b, stream&0x7fffffff)
	return append(b, payload...)
}

// headerBlock is an HPACK block of literal fields without indexing (RFC 7541, 6.2.2),
// with names and values shorter than 127 bytes.
func headerBlock(kv ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, 0, byte(len(kv[i])))
		b = append(b, kv[i]...)
		b = append(b, byte(len(kv[i+1])))
		b = append(b, kv[i+1]...)
	}
	return b
}

// grpcCall is the header block of a gRPC call of method path ("/pkg.Service/Method").
func grpcCall(path string) []byte {
	return headerBlock(":method", "POST", ":scheme", "http", ":path", path, ":authority", "node",
		"content-type", "application/grpc", "te", "trailers")
}

// grpcMessage frames payload as one gRPC message: a compressed flag, a length, the bytes.
func grpcMessage(compressed byte, length uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{compressed}, length)
	return append(b, payload...)
}

// GRPC returns hostile byte streams for a gRPC server, each to be written on a
// connection of its own: random bytes, an HTTP/2 preface cut in half, HTTP/1, and HTTP/2
// connections that open properly (preface and SETTINGS) and then send junk: frames of
// random types and flags, a header block that is not HPACK, DATA on a stream never
// opened, a zero window update, a CONTINUATION out of place, and calls of method path
// (say "/kvmesh.v1.Leader/Generate") whose message is random bytes, claims 4 GiB, claims
// compression nobody negotiated, or is cut short.
func GRPC(seed uint64, path string) [][]byte {
	r := rand.New(rand.NewPCG(seed, 11))
	open := func(frames ...[]byte) []byte {
		b := append([]byte(preface), frame(frameSettings, 0, 0, nil)...)
		for _, f := range frames {
			b = append(b, f...)
		}
		return b
	}
	call := grpcCall(path)
	out := [][]byte{
		Bytes(r, 1),
		Bytes(r, 64<<10),
		[]byte(preface[:len(preface)/2]),
		append([]byte(preface), Bytes(r, 4096)...),
		[]byte("GET / HTTP/1.1\r\nHost: node\r\n\r\n"),
		open(frame(frameHeaders, flagEndHeaders|flagEndStream, 1, Bytes(r, 50))),
		open(frame(frameData, flagEndStream, 7, Bytes(r, 100))),
		open(frame(frameWindowUpdate, 0, 0, []byte{0, 0, 0, 0})),
		open(frame(frameContinuation, flagEndHeaders, 3, Bytes(r, 20))),
		open(frame(frameRSTStream, 0, 0, []byte{0, 0, 0, 8})),
		open(frame(framePing, 0, 0, Bytes(r, 3))),                                    // a PING must carry 8 bytes
		append(open(), Bytes(r, 9)...),                                               // a frame header of random bytes
		open(frame(frameSettings, 0, 0, []byte{0, 4, 0xff, 0xff, 0xff, 0xff, 0, 1})), // window above 2^31-1, half a setting
		open(frame(frameHeaders, flagEndHeaders, 1, call),
			frame(frameData, flagEndStream, 1, grpcMessage(0, 200, Bytes(r, 200)))),
		open(frame(frameHeaders, flagEndHeaders, 1, call),
			frame(frameData, flagEndStream, 1, grpcMessage(0, 0xffffffff, Bytes(r, 100)))),
		open(frame(frameHeaders, flagEndHeaders, 1, call),
			frame(frameData, flagEndStream, 1, grpcMessage(1, 30, Bytes(r, 30)))),
		open(frame(frameHeaders, flagEndHeaders, 1, call),
			frame(frameData, 0, 1, grpcMessage(0, 1000, Bytes(r, 10)))), // cut short, stream left open
	}
	for range 8 { // frames of random type, flags and stream
		out = append(out, open(frame(byte(r.Uint32()), byte(r.Uint32()), r.Uint32(), Bytes(r, r.IntN(64)))))
	}
	return out
}
