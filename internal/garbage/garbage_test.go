package garbage

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

// The payloads are a function of the seed, and the HTTP/2 ones that open properly carry
// frames whose headers give their true length.
func TestPayloads(t *testing.T) {
	for name, gen := range map[string]func(uint64) [][]byte{
		"gossip": Gossip,
		"grpc":   func(s uint64) [][]byte { return GRPC(s, "/kvmesh.v1.Leader/Generate") },
	} {
		a, b, c := gen(1), gen(1), gen(2)
		if !slices.EqualFunc(a, b, bytes.Equal) {
			t.Errorf("%s: two calls with one seed differ", name)
		}
		if slices.EqualFunc(a, c, bytes.Equal) {
			t.Errorf("%s: seeds 1 and 2 give the same payloads", name)
		}
	}
	opened := 0
	for _, p := range GRPC(1, "/x.Y/Z") {
		rest, ok := bytes.CutPrefix(p, []byte(preface))
		if !ok || !bytes.HasPrefix(rest, frame(frameSettings, 0, 0, nil)) {
			continue
		}
		opened++
		settings := rest[:9]
		if n := int(binary.BigEndian.Uint32(append([]byte{0}, settings[:3]...))); n != 0 || settings[3] != frameSettings {
			t.Errorf("the opening SETTINGS frame is %x", settings)
		}
	}
	if opened < 10 {
		t.Errorf("%d HTTP/2 connections that open properly, want at least 10", opened)
	}
}
