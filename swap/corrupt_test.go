package swap

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// flipAt returns a copy of v with byte i flipped.
func flipAt(v []byte, i int) []byte {
	c := bytes.Clone(v)
	c[i] ^= 0x01
	return c
}

// The disk returns a wrong byte for one value (failpoint at the read
// boundary): Get says ErrCorrupt, the entry is gone, the others are intact.
func TestCorruptValueOnRead(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		at   func(v []byte) int // which byte of the stored value flips
	}{
		{"payload byte", func(v []byte) int { return len(v) - 7 }},
		{"token id", func(v []byte) int { return headerSize + metaFixedSize + 3 }},
		{"parent key", func(v []byte) int { return headerSize + 5 }},
		{"payload length", func(v []byte) int { return 5 }},
		{"meta length", func(v []byte) int { return 2 }},
		{"version", func(v []byte) int { return 0 }},
		{"header checksum", func(v []byte) int { return 9 }},
		{"payload checksum", func(v []byte) int { return 14 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, logs := testConfig(t)
			s := openTest(t, cfg)
			for i := range 5 {
				if err := s.Put(ctx, testKey(i), testMeta(i), testPayload(uint64(i), 4096)); err != nil {
					t.Fatal(err)
				}
			}
			bad := testKey(2)
			s.hooks.afterRead = func(k Key, v []byte) []byte {
				if k == bad {
					return flipAt(v, tt.at(v))
				}
				return v
			}
			if _, _, err := s.Get(ctx, bad, nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get of the damaged entry: %v, want ErrCorrupt", err)
			}
			s.hooks.afterRead = nil
			if _, _, err := s.Get(ctx, bad, nil); !errors.Is(err, ErrNotFound) {
				t.Fatalf("damaged entry still there: %v", err)
			}
			for _, i := range []int{0, 1, 3, 4} {
				if _, p, err := s.Get(ctx, testKey(i), nil); err != nil || !bytes.Equal(p, testPayload(uint64(i), 4096)) {
					t.Fatalf("entry %d: %v", i, err)
				}
			}
			if st := s.Stats(); st.Corrupt != 1 || st.Entries != 4 {
				t.Errorf("Stats %+v, want 1 corrupt, 4 entries", st)
			}
			if !strings.Contains(logs.String(), "dropping corrupt entry") || !strings.Contains(logs.String(), bad.String()) {
				t.Errorf("no log line naming the dropped entry:\n%s", logs)
			}
		})
	}
}

// A value damaged on the way to the disk (failpoint at the write boundary,
// after checksumming) is caught when read back.
func TestCorruptValueOnWrite(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	s.hooks.beforeWrite = func(k Key, v []byte) error { v[len(v)-1] ^= 0x80; return nil }
	if err := s.Put(ctx, testKey(1), testMeta(1), testPayload(1, 1000)); err != nil {
		t.Fatal(err)
	}
	s.hooks.beforeWrite = nil
	if _, _, err := s.Get(ctx, testKey(1), nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get: %v, want ErrCorrupt", err)
	}
	if n := s.Stats().Entries; n != 0 {
		t.Errorf("%d entries left", n)
	}
}

// editValue changes the stored value of k through bbolt directly, as a
// bit rot on disk would.
func editValue(t *testing.T, path string, k Key, fn func(v []byte)) {
	t.Helper()
	boltFile(t, path, func(tx *bolt.Tx) error {
		eb := tx.Bucket(blocksBucket).Bucket(k[:])
		v := bytes.Clone(eb.Get(keyValue))
		fn(v)
		return eb.Put(keyValue, v)
	})
}

// A value edited in the file itself: Get finds it corrupt (GetBatch too),
// and a damaged header is caught at Open or by Range without touching the
// payload.
func TestCorruptValueInFile(t *testing.T) {
	ctx := context.Background()
	cfg, logs := testConfig(t)
	writeFile(t, cfg, 10)
	editValue(t, cfg.Path, testKey(3), func(v []byte) { v[len(v)-1] ^= 0xff })   // payload
	editValue(t, cfg.Path, testKey(4), func(v []byte) { v[len(v)-100] ^= 0x10 }) // payload
	editValue(t, cfg.Path, testKey(7), func(v []byte) { v[headerSize] ^= 0x01 }) // meta: caught by Open's scan

	s := openTest(t, cfg)
	if st := s.Stats(); st.Entries != 9 || st.Corrupt != 1 {
		t.Errorf("after Open: %+v, want 9 entries, 1 corrupt", st)
	}
	if !strings.Contains(logs.String(), testKey(7).String()) {
		t.Errorf("Open did not log the entry it dropped:\n%s", logs)
	}
	if _, _, err := s.Get(ctx, testKey(3), nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get: %v", err)
	}
	es := []Entry{{Key: testKey(4)}, {Key: testKey(5)}, {Key: testKey(7)}}
	if err := s.GetBatch(ctx, es); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(es[0].Err, ErrCorrupt) || es[1].Err != nil || !errors.Is(es[2].Err, ErrNotFound) {
		t.Fatalf("GetBatch errs: %v / %v / %v", es[0].Err, es[1].Err, es[2].Err)
	}
	if st := s.Stats(); st.Entries != 7 || st.Corrupt != 3 {
		t.Errorf("Stats %+v, want 7 entries, 3 corrupt", st)
	}

	// Range checks headers: a meta flipped while open is skipped and dropped.
	s.hooks.afterRead = func(k Key, v []byte) []byte {
		if k == testKey(8) {
			return flipAt(v, headerSize+40)
		}
		return v
	}
	var listed int
	if err := s.Range(func(Key, Meta) bool { listed++; return true }); err != nil {
		t.Fatal(err)
	}
	s.hooks.afterRead = nil
	if listed != 6 || s.Stats().Entries != 6 {
		t.Errorf("Range listed %d, %d entries left; want 6, 6", listed, s.Stats().Entries)
	}
}

// A value whose bytes are fine but that sits under another key is corrupt:
// the header checksum covers the key.
func TestValueUnderWrongKey(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	writeFile(t, cfg, 3)
	boltFile(t, cfg.Path, func(tx *bolt.Tx) error {
		b := tx.Bucket(blocksBucket)
		k0, k1 := testKey(0), testKey(1)
		return b.Bucket(k1[:]).Put(keyValue, bytes.Clone(b.Bucket(k0[:]).Get(keyValue)))
	})
	s := openTest(t, cfg)
	if _, _, err := s.Get(ctx, testKey(1), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("moved value: %v, want dropped at Open (ErrNotFound)", err)
	}
	if _, _, err := s.Get(ctx, testKey(0), nil); err != nil {
		t.Errorf("original: %v", err)
	}
}

// A plain value directly in the blocks bucket (never written by this
// layout) is a corrupt entry: Open drops it, and a Put under its key works.
func TestStrayValue(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	writeFile(t, cfg, 3)
	stray := testKey(1)
	boltFile(t, cfg.Path, func(tx *bolt.Tx) error {
		b := tx.Bucket(blocksBucket)
		if err := b.DeleteBucket(stray[:]); err != nil {
			return err
		}
		return b.Put(stray[:], encodeTest(stray, testMeta(1), []byte("plain")))
	})
	s := openTest(t, cfg)
	if st := s.Stats(); st.Entries != 2 || st.Corrupt != 1 {
		t.Errorf("after Open: %+v, want 2 entries, 1 corrupt", st)
	}
	if _, _, err := s.Get(ctx, stray, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("stray entry: %v, want dropped", err)
	}
	if err := s.Put(ctx, stray, testMeta(1), []byte("again")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := s.Get(ctx, stray, nil); err != nil || string(p) != "again" {
		t.Errorf("Get after Put: %q %v", p, err)
	}
}

// A stray value that appears while the store is open: Get reports it
// corrupt and removes it; Put and Delete handle the key too.
func TestStrayValueWhileOpen(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	put := func(k Key) {
		t.Helper()
		if err := s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(blocksBucket).Put(k[:], encodeTest(k, Meta{}, []byte("plain")))
		}); err != nil {
			t.Fatal(err)
		}
		s.entries.Add(1)
		s.bytes.Add(int64(valueSize(&Meta{}, 5)))
	}
	put(testKey(1))
	if _, _, err := s.Get(ctx, testKey(1), nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a stray value: %v, want ErrCorrupt", err)
	}
	put(testKey(2))
	if err := s.Put(ctx, testKey(2), Meta{}, []byte("entry")); err != nil {
		t.Fatalf("Put over a stray value: %v", err)
	}
	put(testKey(3))
	if err := s.Delete(ctx, testKey(3)); err != nil {
		t.Fatalf("Delete of a stray value: %v", err)
	}
	if st := s.Stats(); st.Entries != 1 || st.Corrupt != 1 {
		t.Errorf("Stats %+v, want 1 entry, 1 corrupt", st)
	}
}
