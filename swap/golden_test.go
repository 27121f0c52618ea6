package swap

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenEntries are the entries of the format-1 fixtures.
func goldenEntries() []Entry {
	return []Entry{
		{Key: testKey(1), Meta: Meta{Kind: KindPrefix, DType: 1, Tokens: []int32{1, 2, 3, 4}}, Payload: []byte("block one")},
		{Key: testKey(2), Meta: Meta{Parent: testKey(1), Kind: KindPrefix, DType: 1, Tokens: []int32{5, 6, 7, 8}}, Payload: testPayload(2, 64)},
		{Key: testKey(3), Meta: Meta{Kind: KindPrivate, DType: 2, Encoding: EncodingInt8, Tokens: []int32{-1}}, Payload: EncodeInt8(nil, []float32{0.5, -1, 2, 0}, 2)},
	}
}

// The byte layout of a value is the documented format 1: a change to it
// fails here (and needs a new format version), never silently.
func TestValueGolden(t *testing.T) {
	var b strings.Builder
	for _, e := range goldenEntries() {
		b.WriteString(hex.EncodeToString(e.Key[:]) + "\n")
		b.WriteString(hex.Dump(encodeTest(e.Key, e.Meta, e.Payload)) + "\n")
	}
	path := filepath.Join("testdata", "values-v1.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("encoded values differ from %s (format 1 changed?)", path)
	}
}

// writeFixture writes the format-1 file with plain bbolt, as another
// implementation following doc.go would.
func writeFixture(t *testing.T, path string) {
	t.Helper()
	_ = os.Remove(path)
	boltFile(t, path, func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucket(metaBucket)
		if err != nil {
			return err
		}
		bb, err := tx.CreateBucket(blocksBucket)
		if err != nil {
			return err
		}
		var f [4]byte
		binary.LittleEndian.PutUint32(f[:], 1)
		var c [8]byte
		binary.LittleEndian.PutUint64(c[:], uint64(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixNano()))
		for _, kv := range [][2][]byte{{[]byte("format"), f[:]}, {[]byte("identity"), []byte(testIdentity)}, {[]byte("created"), c[:]}} {
			if err := mb.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		for _, e := range goldenEntries() {
			eb, err := bb.CreateBucket(bytes.Clone(e.Key[:]))
			if err != nil {
				return err
			}
			if err := eb.Put([]byte("v"), encodeTest(e.Key, e.Meta, e.Payload)); err != nil {
				return err
			}
		}
		return nil
	})
}

// A file of format 1, checked in, opens and serves its entries: the warm
// restart of a file written by an earlier build.
func TestFormatV1File(t *testing.T) {
	fixture := filepath.Join("testdata", "format-v1.db")
	if *update {
		writeFixture(t, fixture)
	}
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatalf("%v (run go test -run FormatV1 -update to create it)", err)
	}
	cfg, logs := testConfig(t)
	if err := os.WriteFile(cfg.Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, cfg)
	if strings.Contains(logs.String(), "set aside") {
		t.Fatalf("fixture set aside:\n%s", logs)
	}
	want := goldenEntries()
	var listed []Key
	if err := s.Range(func(k Key, m Meta) bool { listed = append(listed, k); return true }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(want) {
		t.Fatalf("Range listed %d entries, want %d", len(listed), len(want))
	}
	for _, e := range want {
		m, p, err := s.Get(context.Background(), e.Key, nil)
		if err != nil || !bytes.Equal(p, e.Payload) || !metaEqual(m, e.Meta) {
			t.Errorf("entry %s: %+v %v", e.Key, m, err)
		}
	}
}
