package kvindex

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/kvmesh/kvmesh/blocks"
)

func randomBatch(rng *rand.Rand, n int) Batch {
	b := Batch{Node: fmt.Sprintf("worker-%d.pipeline", rng.IntN(100)), Incarnation: rng.Uint64(), First: 1 + rng.Uint64N(1<<40)}
	for range n {
		e := Event{Kind: blocks.Stored}
		if rng.IntN(2) == 0 {
			e.Kind = blocks.Removed
		}
		for i := range e.Key {
			e.Key[i] = byte(rng.Uint32())
		}
		if rng.IntN(3) == 0 {
			e.HasParent = true
			e.Parent = blocks.ChainHash(e.Key, nil)
		}
		b.Events = append(b.Events, e)
	}
	return b
}

func TestBatchRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 2, 100} {
		b := randomBatch(rng, n)
		var got Batch
		if err := decodeBatch(appendBatch(nil, &b), &got); err != nil {
			t.Fatalf("%d events: %v", n, err)
		}
		if n == 0 {
			got.Events, b.Events = nil, nil
		}
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("%d events: round trip differs", n)
		}
	}
}

func TestSnapshotPartRoundTrip(t *testing.T) {
	s := Snapshot{Node: "n", Incarnation: 7, Seq: 9, Keys: []blocks.BlockHash{key('a'), key('b'), key('c')}}
	var got snapshotPart
	if err := decodeSnapshotPart(appendSnapshotPart(nil, &s, s.Keys[1:], 1, 2), &got); err != nil {
		t.Fatal(err)
	}
	if got.Node != "n" || got.Incarnation != 7 || got.Seq != 9 || got.part != 1 || got.parts != 2 || !reflect.DeepEqual(got.Keys, s.Keys[1:]) {
		t.Fatalf("got %+v", got)
	}
	if err := decodeRequest(encodeRequest()); err != nil {
		t.Fatal(err)
	}
}

// TestWireGolden pins the bytes of version 1, so that a change of format is deliberate.
func TestWireGolden(t *testing.T) {
	b := Batch{Node: "n1", Incarnation: 2, First: 3, Events: []Event{
		{Kind: blocks.Stored, Key: blocks.BlockHash{0: 0xaa, 31: 0xbb}},
		{Kind: blocks.Removed, Key: blocks.BlockHash{0: 0xcc}, HasParent: true, Parent: blocks.BlockHash{31: 0xdd}},
	}}
	want := "4b560101" + "02" + "6e31" + "0200000000000000" + "0300000000000000" + "02000000" +
		"01" + "aa" + "000000000000000000000000000000000000000000000000000000000000" + "bb" +
		"82" + "cc" + "00000000000000000000000000000000000000000000000000000000000000" +
		"00000000000000000000000000000000000000000000000000000000000000" + "dd"
	if got := hex.EncodeToString(appendBatch(nil, &b)); got != want {
		t.Errorf("batch bytes\n got %s\nwant %s", got, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Batch{Node: "n", Incarnation: 1, First: 1, Events: []Event{{Kind: blocks.Stored}}}
	enc := appendBatch(nil, &good)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(enc)) }
	for name, data := range map[string][]byte{
		"empty":       nil,
		"short":       enc[:3],
		"magic":       mut(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version":     mut(func(b []byte) []byte { b[2] = 2; return b }),
		"type":        mut(func(b []byte) []byte { b[3] = msgSnapshot; return b }),
		"empty node":  mut(func(b []byte) []byte { b[4] = 0; return b }),
		"seq zero":    mut(func(b []byte) []byte { b[14] = 0; return b }),
		"kind 0":      mut(func(b []byte) []byte { b[26] = 0; return b }),
		"kind 3":      mut(func(b []byte) []byte { b[26] = 3; return b }),
		"flags":       mut(func(b []byte) []byte { b[26] = 0x41; return b }),
		"parent flag": mut(func(b []byte) []byte { b[26] |= flagParent; return b }),
		"truncated":   enc[:len(enc)-1],
		"trailing":    append(bytes.Clone(enc), 0),
		"huge count":  mut(func(b []byte) []byte { b[22], b[23], b[24], b[25] = 0xff, 0xff, 0xff, 0xff; return b }),
		"overflow": appendBatch(nil, &Batch{Node: "n", Incarnation: 1, First: ^uint64(0),
			Events: []Event{{Kind: blocks.Stored}, {Kind: blocks.Stored}}}),
		"json": []byte(`{"node":"n"}`),
	} {
		var b Batch
		if err := decodeBatch(data, &b); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: %v, want ErrBadMessage", name, err)
		}
	}
	var p snapshotPart
	s := Snapshot{Node: "n", Incarnation: 1, Seq: 1, Keys: []blocks.BlockHash{{}}}
	for name, data := range map[string][]byte{
		"part past parts": appendSnapshotPart(nil, &s, s.Keys, 2, 2),
		"zero parts":      appendSnapshotPart(nil, &s, s.Keys, 0, 0),
		"batch":           enc,
		"truncated":       appendSnapshotPart(nil, &s, s.Keys, 0, 1)[:40],
	} {
		if err := decodeSnapshotPart(data, &p); !errors.Is(err, ErrBadMessage) {
			t.Errorf("snapshot %s: %v, want ErrBadMessage", name, err)
		}
	}
	if err := decodeRequest(append(encodeRequest(), 1)); !errors.Is(err, ErrBadMessage) {
		t.Errorf("request with a body: %v", err)
	}
}

func TestSubjectToken(t *testing.T) {
	for in, want := range map[string]string{
		"":             "%",
		"worker-0":     "worker-0",
		"w.1":          "w%2E1",
		"a*b>c d":      "a%2Ab%3Ec%20d",
		"sha256:ab_CD": "sha256%3Aab_CD",
		"%":            "%25",
		"\xff":         "%FF",
	} {
		if got := subjectToken(in); got != want {
			t.Errorf("subjectToken(%q) = %q, want %q", in, got, want)
		}
	}
	if eventSubject("kvmesh.kv", "m.1", "n") != "kvmesh.kv.ev.m%2E1.n" || snapshotSubject("p", "m", "a.b") != "p.snap.m.a%2Eb" {
		t.Error("subjects")
	}
	for p, ok := range map[string]bool{"kvmesh.kv": true, "a": true, "": false, "a..b": false, "a.*": false, "a.>": false, "a b": false} {
		if validPrefix(p) != ok {
			t.Errorf("validPrefix(%q) = %v", p, !ok)
		}
	}
}

// FuzzDecodeBatch: no input crashes the decoders, and whatever decodes re-encodes to the
// same bytes (the format has one encoding per message).
func FuzzDecodeBatch(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 3} {
		b := randomBatch(rng, n)
		f.Add(appendBatch(nil, &b))
	}
	s := Snapshot{Node: "n", Incarnation: 1, Seq: 2, Keys: []blocks.BlockHash{key('a')}}
	f.Add(appendSnapshotPart(nil, &s, s.Keys, 0, 1))
	f.Add(encodeRequest())
	f.Add([]byte("KV\x01\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Batch
		if err := decodeBatch(data, &b); err == nil {
			if !bytes.Equal(appendBatch(nil, &b), data) {
				t.Fatalf("batch %x does not re-encode to itself", data)
			}
			ix, _ := NewIndex(IndexConfig{})
			ix.Apply(&b)
		} else if !errors.Is(err, ErrBadMessage) {
			t.Fatalf("error %v is not ErrBadMessage", err)
		}
		var p snapshotPart
		if err := decodeSnapshotPart(data, &p); err == nil {
			if !bytes.Equal(appendSnapshotPart(nil, &p.Snapshot, p.Keys, p.part, p.parts), data) {
				t.Fatalf("snapshot %x does not re-encode to itself", data)
			}
		} else if !errors.Is(err, ErrBadMessage) {
			t.Fatalf("error %v is not ErrBadMessage", err)
		}
		_ = decodeRequest(data)
	})
}

// jsonBatch is the JSON form the binary format was measured against.
type jsonBatch struct {
	Node        string      `json:"node"`
	Incarnation uint64      `json:"inc"`
	First       uint64      `json:"first"`
	Events      []jsonEvent `json:"events"`
}

type jsonEvent struct {
	Kind uint8  `json:"k"`
	Key  string `json:"key"`
}

func toJSONBatch(b *Batch) jsonBatch {
	j := jsonBatch{Node: b.Node, Incarnation: b.Incarnation, First: b.First}
	for _, e := range b.Events {
		j.Events = append(j.Events, jsonEvent{Kind: uint8(e.Kind), Key: hex.EncodeToString(e.Key[:])})
	}
	return j
}

// TestWireSize records the sizes that chose the format: binary against JSON.
func TestWireSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	b := randomBatch(rng, 64)
	for i := range b.Events {
		b.Events[i].HasParent = false
	}
	bin := appendBatch(nil, &b)
	js, _ := json.Marshal(toJSONBatch(&b))
	t.Logf("64 events: binary %d bytes (%.1f per event), JSON %d bytes (%.1f per event)",
		len(bin), float64(len(bin))/64, len(js), float64(len(js))/64)
	if len(bin) >= len(js)/2 {
		t.Errorf("binary %d bytes is not much smaller than JSON %d", len(bin), len(js))
	}
}

func BenchmarkWireBinary(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	batch := randomBatch(rng, 64)
	var buf []byte
	var out Batch
	b.ReportAllocs()
	for b.Loop() {
		buf = appendBatch(buf[:0], &batch)
		if err := decodeBatch(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWireJSON(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	batch := randomBatch(rng, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ := json.Marshal(toJSONBatch(&batch))
		var out jsonBatch
		if err := json.Unmarshal(buf, &out); err != nil {
			b.Fatal(err)
		}
		for _, e := range out.Events {
			var k blocks.BlockHash
			if _, err := hex.Decode(k[:], []byte(e.Key)); err != nil {
				b.Fatal(err)
			}
		}
	}
}
