package cluster

import (
	"errors"
	"strings"
	"testing"
)

// metaOfSize pads m.Pipeline so that m encodes in exactly size bytes.
func metaOfSize(t testing.TB, m Meta, size int) Meta {
	m.Pipeline = ""
	for {
		b, err := encodeMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == size {
			return m
		}
		if len(b) > size {
			t.Fatalf("cannot hit %d bytes exactly (at %d)", size, len(b))
		}
		m.Pipeline += "p"
	}
}

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{ID: "r", Role: RoleRouter, State: StateReady},
		workerMeta("worker-1"),
		{ID: "w", Role: RoleWorker, Incarnation: 1<<64 - 1, First: 3, Last: 1<<31 - 1, FreeBlocks: 1<<31 - 1,
			TotalBlocks: 1<<31 - 1, QueueDepth: 1<<31 - 1, State: StateDraining, Model: "ünïcode", HTTPAddr: "[::1]:80",
			Memory: 1<<31 - 1},
		{ID: "l", Role: RoleWorker, State: StateLoading, Incarnation: 1764460000123456789},
		metaOfSize(t, workerMeta("at-limit"), MaxMetaSize),
	} {
		b, err := encodeMeta(m)
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if b[0] != metaVersion {
			t.Errorf("version byte %d", b[0])
		}
		got, err := decodeMeta(b)
		if err != nil || got != m {
			t.Errorf("round trip of %+v: %+v, %v", m, got, err)
		}
	}
}

func TestMetaInvalid(t *testing.T) {
	ok := workerMeta("w")
	for _, tc := range []struct {
		name string
		mod  func(*Meta)
		want error
	}{
		{"empty ID", func(m *Meta) { m.ID = "" }, ErrBadMeta},
		{"no role", func(m *Meta) { m.Role = "" }, ErrBadMeta},
		{"bad role", func(m *Meta) { m.Role = "boss" }, ErrBadMeta},
		{"no state", func(m *Meta) { m.State = "" }, ErrBadMeta},
		{"negative first", func(m *Meta) { m.First = -1 }, ErrBadMeta},
		{"first after last", func(m *Meta) { m.First, m.Last = 5, 4 }, ErrBadMeta},
		{"free above total", func(m *Meta) { m.FreeBlocks = m.TotalBlocks + 1 }, ErrBadMeta},
		{"negative queue", func(m *Meta) { m.QueueDepth = -1 }, ErrBadMeta},
		{"count above int32", func(m *Meta) { m.TotalBlocks = 1 << 31 }, ErrBadMeta},
		{"negative memory", func(m *Meta) { m.Memory = -1 }, ErrBadMeta},
		{"memory above int32", func(m *Meta) { m.Memory = 1 << 31 }, ErrBadMeta},
		{"one byte over", func(m *Meta) { *m = metaOfSize(t, *m, MaxMetaSize); m.Pipeline += "x" }, ErrMetaTooLarge},
		{"far over", func(m *Meta) { m.Model = strings.Repeat("f", 1000) }, ErrMetaTooLarge},
	} {
		m := ok
		tc.mod(&m)
		if _, err := encodeMeta(m); !errors.Is(err, tc.want) {
			t.Errorf("%s: encode = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestDecodeMetaRejects(t *testing.T) {
	good, _ := encodeMeta(workerMeta("w"))
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(good[:len(good):len(good)], 0)},
		{"string past end", []byte{1, 200, 'a'}},
		{"bad role", func() []byte { b := append([]byte(nil), good...); b[3] = 9; return b }()},
		{"bad state", func() []byte { b := append([]byte(nil), good...); b[len(b)-2] = 0; return b }()}, // then Memory, 1 byte
		{"version 1 with memory", append([]byte{1}, good[1:]...)},
		{"over limit", make([]byte, MaxMetaSize+1)},
	} {
		if _, err := decodeMeta(tc.b); err == nil {
			t.Errorf("%s: decoded", tc.name)
		}
	}
	// A later version with appended fields decodes: the known fields are read.
	v3 := append([]byte{metaVersion + 1}, good[1:]...)
	v3 = append(v3, 7, 7, 7)
	if m, err := decodeMeta(v3); err != nil || m != workerMeta("w") {
		t.Errorf("version %d with extra fields: %+v, %v", metaVersion+1, m, err)
	}
	// Version 1, from a node that gossips no Memory, decodes with Memory 0.
	v1 := append([]byte{1}, good[1:len(good)-1]...)
	want := workerMeta("w")
	want.Memory = 0
	if m, err := decodeMeta(v1); err != nil || m != want {
		t.Errorf("version 1: %+v, %v", m, err)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{workerMeta("worker-1"), {ID: "r", Role: RoleRouter, State: StateLoading, Incarnation: 99}} {
		b, _ := encodeMeta(m)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		b2, err := encodeMeta(m)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
		m2, err := decodeMeta(b2)
		if err != nil || m2 != m {
			t.Fatalf("re-decode: %+v, %v; want %+v", m2, err, m)
		}
	})
}

// TestMetaCompact: a worker's Meta with realistic values stays far below memberlist's
// 512-byte limit, so the fields appended later (Memory) leave room for more.
func TestMetaCompact(t *testing.T) {
	m := Meta{ID: "worker-12", Role: RoleWorker, Incarnation: 1796006916726253722,
		GRPCAddr: "10.0.0.12:9001", HTTPAddr: "10.0.0.12:9101", Model: strings.Repeat("8a", 32),
		First: 20, Last: 40, Pipeline: "p12", FreeBlocks: 99999, TotalBlocks: 100000, QueueDepth: 300,
		State: StateReady, Memory: 81920}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a worker's Meta: %d bytes of %d", len(b), MaxMetaSize)
	if len(b) > 160 {
		t.Errorf("a worker's Meta takes %d bytes, want at most 160", len(b))
	}
}
