package swap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeFile creates a store at cfg.Path holding n entries and closes it.
func writeFile(t *testing.T, cfg Config, n int) {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var es []Entry
	for i := range n {
		es = append(es, Entry{Key: testKey(i), Meta: testMeta(i), Payload: testPayload(uint64(i), 300+i)})
	}
	if err := s.PutBatch(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// setAsideFiles returns the files next to cfg.Path set aside as kind.
func setAsideFiles(t *testing.T, cfg Config, kind string) []string {
	t.Helper()
	m, err := filepath.Glob(cfg.Path + "." + kind + "-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// assertSetAside checks that Open set the file aside as kind with a Warn
// line naming where it went, and that the fresh store starts empty and works.
func assertSetAside(t *testing.T, cfg Config, logs *syncBuffer, kind, reason string) {
	t.Helper()
	s := openTest(t, cfg)
	moved := setAsideFiles(t, cfg, kind)
	if len(moved) != 1 {
		t.Fatalf("%d files set aside as %s, want 1 (logs: %s)", len(moved), kind, logs)
	}
	log := logs.String()
	t.Log(log)
	for _, want := range []string{"level=WARN", "set aside", "kind=" + kind, "moved_to=" + moved[0], reason} {
		if !strings.Contains(log, want) {
			t.Errorf("log line lacks %q:\n%s", want, log)
		}
	}
	if st := s.Stats(); st.Entries != 0 {
		t.Errorf("fresh store has %d entries", st.Entries)
	}
	ctx := context.Background()
	if err := s.Put(ctx, testKey(1), testMeta(1), []byte("fresh")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := s.Get(ctx, testKey(1), nil); err != nil || string(p) != "fresh" {
		t.Fatalf("fresh store Get: %q %v", p, err)
	}
}

func TestForeignIdentitySetAside(t *testing.T) {
	cfg, logs := testConfig(t)
	other := cfg
	other.Identity = "another-model"
	writeFile(t, other, 5)
	assertSetAside(t, cfg, logs, "foreign", "another-model")

	// The file set aside is intact: its own identity still reads it.
	other.Path = setAsideFiles(t, cfg, "foreign")[0]
	s := openTest(t, other)
	if n := s.Stats().Entries; n != 5 {
		t.Errorf("set-aside file holds %d entries, want 5", n)
	}
}

// boltFile writes a bbolt file at path with fn's changes.
func boltFile(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestForeignFiles(t *testing.T) {
	tests := []struct {
		name   string
		make   func(t *testing.T, cfg Config)
		reason string
	}{
		{"another application's bbolt file", func(t *testing.T, cfg Config) {
			boltFile(t, cfg.Path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("users"))
				if err != nil {
					return err
				}
				return b.Put([]byte("alice"), []byte("1"))
			})
		}, "not a kvmesh swap file"},
		{"a newer format version", func(t *testing.T, cfg Config) {
			writeFile(t, cfg, 3)
			boltFile(t, cfg.Path, func(tx *bolt.Tx) error {
				var f [4]byte
				binary.LittleEndian.PutUint32(f[:], formatVersion+1)
				return tx.Bucket(metaBucket).Put(keyFormat, f[:])
			})
		}, "format version 2"},
		{"meta bucket without a format", func(t *testing.T, cfg Config) {
			writeFile(t, cfg, 3)
			boltFile(t, cfg.Path, func(tx *bolt.Tx) error { return tx.Bucket(metaBucket).Delete(keyFormat) })
		}, "format key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, logs := testConfig(t)
			tt.make(t, cfg)
			assertSetAside(t, cfg, logs, "foreign", tt.reason)
		})
	}
}

// pageOf returns the page size of the bbolt file and the root page of its
// blocks bucket.
func pageOf(t *testing.T, path string) (pageSize, root int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pageSize = db.Info().PageSize
	_ = db.View(func(tx *bolt.Tx) error {
		root = int(tx.Bucket(blocksBucket).Root())
		return nil
	})
	return pageSize, root
}

// usedBytes returns the size of the pages the bbolt file uses (up to its
// high-water mark), which is less than its length.
func usedBytes(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return int(n)
}

// editFile applies fn to the bytes of the file at path.
func editFile(t *testing.T, path string, fn func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptFiles(t *testing.T) {
	const n = 200 // enough entries for a multi-page tree
	tests := []struct {
		name string
		edit func(t *testing.T, cfg Config, b []byte) []byte
	}{
		{"garbage bytes", func(t *testing.T, cfg Config, b []byte) []byte {
			return bytes.Repeat([]byte("not a database "), 2000)
		}},
		{"a few garbage bytes", func(t *testing.T, cfg Config, b []byte) []byte { return []byte("junk") }},
		{"truncated to one page", func(t *testing.T, cfg Config, b []byte) []byte { return b[:4096] }},
		{"truncated to half its pages", func(t *testing.T, cfg Config, b []byte) []byte {
			return b[:usedBytes(t, cfg.Path)/2] // bbolt grows the file ahead of use
		}},
		{"both meta pages flipped", func(t *testing.T, cfg Config, b []byte) []byte {
			ps, _ := pageOf(t, cfg.Path)
			b[20] ^= 0xff
			b[ps+20] ^= 0xff
			return b
		}},
		{"blocks root page type flipped", func(t *testing.T, cfg Config, b []byte) []byte {
			ps, root := pageOf(t, cfg.Path)
			b[root*ps+8] ^= 0xff // page header: id u64, flags u16
			return b
		}},
		{"blocks root page count flipped", func(t *testing.T, cfg Config, b []byte) []byte {
			ps, root := pageOf(t, cfg.Path)
			b[root*ps+11] ^= 0x7f // page header: count u16 at 10
			return b
		}},
		{"blocks root page zeroed", func(t *testing.T, cfg Config, b []byte) []byte {
			ps, root := pageOf(t, cfg.Path)
			clear(b[root*ps : (root+1)*ps])
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, logs := testConfig(t)
			writeFile(t, cfg, n)
			editFile(t, cfg.Path, func(b []byte) []byte { return tt.edit(t, cfg, b) })
			assertSetAside(t, cfg, logs, "corrupt", "reason=")
		})
	}
}

// One damaged meta page is not corruption: bbolt falls back to the other.
func TestOneMetaPageFlipped(t *testing.T) {
	cfg, logs := testConfig(t)
	writeFile(t, cfg, 20)
	editFile(t, cfg.Path, func(b []byte) []byte { b[20] ^= 0xff; return b })
	s := openTest(t, cfg)
	if len(setAsideFiles(t, cfg, "corrupt")) != 0 || strings.Contains(logs.String(), "set aside") {
		t.Fatalf("file set aside: %s", logs)
	}
	if n := s.Stats().Entries; n != 20 {
		t.Errorf("%d entries, want 20", n)
	}
}

func TestEmptyFileIsInitialised(t *testing.T) {
	cfg, _ := testConfig(t)
	if err := os.WriteFile(cfg.Path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, cfg)
	if err := s.Put(context.Background(), testKey(1), Meta{}, []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// Errors that say nothing about the file's content set nothing aside.
func TestLockedFileIsNotSetAside(t *testing.T) {
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	_ = s
	cfg.LockTimeout = 50 * time.Millisecond
	if _, err := Open(context.Background(), cfg); err == nil {
		t.Fatal("second Open of a locked file succeeded")
	}
	if m, _ := filepath.Glob(cfg.Path + ".*"); len(m) != 0 {
		t.Fatalf("files set aside: %v", m)
	}
	dir := filepath.Join(t.TempDir(), "missing", "swap.db")
	cfg.Path = dir
	if _, err := Open(context.Background(), cfg); err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open in a missing directory: %v", err)
	}
}

// Damage to a page while the store is open (another writer scribbling on the
// file) makes bbolt panic inside a read; the store returns ErrCorrupt
// instead of crashing, logs it, and the next Open sets the file aside.
func TestDamageWhileOpen(t *testing.T) {
	ctx := context.Background()
	cfg, logs := testConfig(t)
	writeFile(t, cfg, 200)
	ps, root := pageOf(t, cfg.Path)
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, ps), int64(root*ps)); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, _, err := s.Get(ctx, testKey(5), nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get over a damaged root page: %v, want ErrCorrupt", err)
	}
	if err := s.Range(func(Key, Meta) bool { return true }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Range over a damaged root page: %v, want ErrCorrupt", err)
	}
	if !s.Stats().Damaged {
		t.Error("Stats.Damaged not set")
	}
	if !strings.Contains(logs.String(), "bbolt panicked") {
		t.Errorf("no log line for the panic:\n%s", logs)
	}
	_ = s.Close()
	assertSetAside(t, cfg, logs, "corrupt", "reason=")
}

// A crash loop over a damaged file does not fill the volume with copies:
// only the newest KeepSetAside set-aside files stay.
func TestSetAsidePruned(t *testing.T) {
	tests := []struct {
		name string
		keep int
		want int
	}{
		{"default keeps the newest", 0, 1},
		{"keep two", 2, 2},
		{"negative keeps all", -1, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, logs := testConfig(t)
			cfg.KeepSetAside = tt.keep
			var last string
			for i := range 4 {
				kind := "corrupt"
				if i == 2 {
					kind = "foreign"
					other := cfg
					other.Identity = "another-model"
					if err := os.Remove(cfg.Path); err != nil {
						t.Fatal(err)
					}
					writeFile(t, other, 1)
				} else if err := os.WriteFile(cfg.Path, []byte("garbage garbage garbage"), 0o600); err != nil {
					t.Fatal(err)
				}
				s, err := Open(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				_ = s.Close()
				m := setAsideFiles(t, cfg, kind)
				if len(m) == 0 {
					t.Fatalf("round %d: nothing set aside as %s", i, kind)
				}
				last = m[len(m)-1]
			}
			all := append(setAsideFiles(t, cfg, "corrupt"), setAsideFiles(t, cfg, "foreign")...)
			if len(all) != tt.want {
				t.Fatalf("%d set-aside files left, want %d: %v", len(all), tt.want, all)
			}
			if _, err := os.Stat(last); err != nil {
				t.Errorf("the newest set-aside file is gone: %v", err)
			}
			if removed := strings.Count(logs.String(), "removed an old set-aside file"); removed != 4-tt.want {
				t.Errorf("%d removals logged, want %d", removed, 4-tt.want)
			}
		})
	}
}
