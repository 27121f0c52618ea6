package swap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

const testIdentity = "stories260K-test-identity"

// testKey returns a deterministic key for i.
func testKey(i int) Key {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return Key(sha256.Sum256(b[:]))
}

// testPayload returns n deterministic pseudo-random bytes for seed.
func testPayload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// testMeta returns a prefix-block meta with 16 tokens derived from i.
func testMeta(i int) Meta {
	m := Meta{Parent: testKey(i - 1), Kind: KindPrefix, DType: 1, Encoding: EncodingRaw}
	for j := range 16 {
		m.Tokens = append(m.Tokens, int32(i*16+j))
	}
	return m
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testConfig returns a config for a file in a fresh temp dir whose log
// lines go to the returned buffer.
func testConfig(t testing.TB) (Config, *syncBuffer) {
	t.Helper()
	var buf syncBuffer
	return Config{
		Path:     filepath.Join(t.TempDir(), "swap.db"),
		Identity: testIdentity,
		NoSync:   true, // tests do not need durability against power loss
		Logger:   slog.New(slog.NewTextHandler(&buf, nil)),
	}, &buf
}

// openTest opens cfg and, at cleanup, checks the store's invariants and
// closes it.
func openTest(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		checkInvariants(t, s)
		_ = s.Close()
	})
	return s
}

// checkInvariants checks that the counters match the file: entries and
// stored bytes equal a fresh count, and every key is 32 bytes. It is a no-op
// on a closed store.
func checkInvariants(t testing.TB, s *Store) {
	t.Helper()
	var n, size int64
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(blocksBucket)
		return b.ForEach(func(k, _ []byte) error {
			if len(k) != 32 {
				t.Errorf("invariant: key of %d bytes", len(k))
			}
			v, _, _ := lookup(b, k)
			n++
			size += int64(len(v))
			return nil
		})
	})
	if err != nil {
		return // closed
	}
	st := s.Stats()
	if st.Entries != n || st.StoredBytes != size {
		t.Errorf("invariant: Stats says %d entries / %d bytes, the file holds %d / %d", st.Entries, st.StoredBytes, n, size)
	}
	if s.cfg.MaxBytes > 0 && size > s.cfg.MaxBytes {
		t.Errorf("invariant: %d stored bytes over MaxBytes %d", size, s.cfg.MaxBytes)
	}
}
