package swap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMaxBytes(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	m := testMeta(0)
	per := int64(valueSize(&m, 1000))
	cfg.MaxBytes = 10 * per
	s := openTest(t, cfg)
	for i := range 10 {
		if err := s.Put(ctx, testKey(i), testMeta(0), testPayload(uint64(i), 1000)); err != nil {
			t.Fatalf("Put %d under the limit: %v", i, err)
		}
	}
	if err := s.Put(ctx, testKey(10), testMeta(0), testPayload(10, 1000)); !errors.Is(err, ErrFull) {
		t.Fatalf("Put past MaxBytes: %v, want ErrFull", err)
	}
	// Replacing an entry with one of the same size fits.
	if err := s.Put(ctx, testKey(3), testMeta(0), testPayload(33, 1000)); err != nil {
		t.Fatalf("replace at the limit: %v", err)
	}
	// A batch that does not fit as a whole stores nothing.
	batch := []Entry{{Key: testKey(20), Payload: []byte("x")}}
	batch = append(batch, Entry{Key: testKey(21), Meta: testMeta(0), Payload: testPayload(21, 1000)})
	if err := s.PutBatch(ctx, batch); !errors.Is(err, ErrFull) {
		t.Fatalf("PutBatch past MaxBytes: %v", err)
	}
	if _, _, err := s.Get(ctx, testKey(20), nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("half a batch was written: %v", err)
	}
	if st := s.Stats(); st.Full != 2 || st.Entries != 10 || st.StoredBytes != 10*per {
		t.Errorf("Stats %+v", st)
	}
	// After a Delete the space is there again.
	if err := s.Delete(ctx, testKey(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, testKey(10), testMeta(0), testPayload(10, 1000)); err != nil {
		t.Fatalf("Put after Delete: %v", err)
	}
}

// ENOSPC from the disk (failpoint at the write boundary) maps to ErrFull,
// writes nothing, and the store keeps working.
func TestNoSpaceFromDisk(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	if err := s.Put(ctx, testKey(1), testMeta(1), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	calls := 0
	s.hooks.beforeWrite = func(k Key, v []byte) error {
		calls++
		if calls == 2 { // the second entry of the batch
			return &os.PathError{Op: "write", Path: cfg.Path, Err: syscall.ENOSPC}
		}
		return nil
	}
	err := s.PutBatch(ctx, []Entry{{Key: testKey(2), Payload: []byte("a")}, {Key: testKey(3), Payload: []byte("b")}})
	if !errors.Is(err, ErrFull) {
		t.Fatalf("PutBatch on a full disk: %v, want ErrFull", err)
	}
	s.hooks.beforeWrite = nil
	if _, _, err := s.Get(ctx, testKey(2), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("first entry of the failed batch: %v, want ErrNotFound", err)
	}
	if _, p, err := s.Get(ctx, testKey(1), nil); err != nil || string(p) != "kept" {
		t.Errorf("earlier entry: %q %v", p, err)
	}
	if err := s.Put(ctx, testKey(2), Meta{}, []byte("a")); err != nil {
		t.Errorf("Put after the disk has room again: %v", err)
	}
	if st := s.Stats(); st.Full != 1 || st.Entries != 2 {
		t.Errorf("Stats %+v", st)
	}
}

// A real full file system: a 1 MiB tmpfs. Puts fail with ErrFull, nothing
// crashes, Gets still serve, and once entries are deleted Puts succeed
// again; a reopen sees every entry that was acknowledged.
func TestFullFilesystem(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, "1m")
	cfg, _ := testConfig(t)
	cfg.Path = filepath.Join(dir, "swap.db")
	cfg.NoSync = false
	s := openTest(t, cfg)
	const blk = 20 << 10 // a stories260K block
	stored := 0
	var fullErr error
	for i := range 200 {
		err := s.Put(ctx, testKey(i), testMeta(i), testPayload(uint64(i), blk))
		if err != nil {
			fullErr = err
			break
		}
		stored++
	}
	if !errors.Is(fullErr, ErrFull) {
		t.Fatalf("after %d blocks on a 1 MiB tmpfs: %v, want ErrFull", stored, fullErr)
	}
	t.Logf("stored %d blocks of %d KiB before ErrFull: %v", stored, blk>>10, fullErr)
	for i := range stored {
		if _, p, err := s.Get(ctx, testKey(i), nil); err != nil || !bytes.Equal(p, testPayload(uint64(i), blk)) {
			t.Fatalf("Get %d on a full disk: %v", i, err)
		}
	}
	// Free space inside the file, then write again.
	var del []Key
	for i := 0; i < stored; i += 2 {
		del = append(del, testKey(i))
	}
	if err := s.DeleteBatch(ctx, del); err != nil {
		t.Fatalf("DeleteBatch on a full disk: %v", err)
	}
	for i := 1000; i < 1003; i++ {
		if err := s.Put(ctx, testKey(i), testMeta(i), testPayload(uint64(i), blk)); err != nil {
			t.Fatalf("Put after freeing space: %v", err)
		}
	}
	want := s.Stats().Entries
	checkInvariants(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, cfg)
	if got := s2.Stats().Entries; got != want {
		t.Errorf("after reopen %d entries, want %d", got, want)
	}
	for i := 1; i < stored; i += 2 {
		if _, _, err := s2.Get(ctx, testKey(i), nil); err != nil {
			t.Fatalf("entry %d after reopen: %v", i, err)
		}
	}
}

// fillFile writes garbage to path until the file system is full.
func fillFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("full "), 1<<12)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// On a volume already full, Open of a new file returns ErrFull and sets
// nothing aside; the worker can run without the tier.
func TestOpenOnFullVolume(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	fillFile(t, filepath.Join(dir, "filler"))
	cfg, _ := testConfig(t)
	cfg.Path = filepath.Join(dir, "swap.db")
	if s, err := Open(context.Background(), cfg); !errors.Is(err, ErrFull) {
		if err == nil {
			_ = s.Close()
		}
		t.Fatalf("Open on a full volume: %v, want ErrFull", err)
	}
	if m, _ := filepath.Glob(cfg.Path + ".*"); len(m) != 0 {
		t.Errorf("set aside on a full volume: %v", m)
	}
}

// A corrupt file that fills the volume: it is set aside, there is no room
// for a fresh file, so the copy is deleted and the fresh file starts.
func TestCorruptFileFillsVolume(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	cfg, logs := testConfig(t)
	cfg.Path = filepath.Join(dir, "swap.db")
	fillFile(t, cfg.Path)
	s := openTest(t, cfg)
	if err := s.Put(context.Background(), testKey(1), testMeta(1), testPayload(1, 20<<10)); err != nil {
		t.Fatalf("Put into the fresh file: %v", err)
	}
	for _, want := range []string{"set aside", "no room for a fresh file; deleted the file set aside"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if m, _ := filepath.Glob(cfg.Path + ".*"); len(m) != 0 {
		t.Errorf("set-aside copy still there: %v", m)
	}
}

// DeleteBatch on a disk too full for its transaction splits it, down to one
// key per transaction, and a key that cannot be deleted even alone does not
// keep the others from being deleted (failpoint at the write boundary).
func TestDeleteBatchSplitsOnFullDisk(t *testing.T) {
	ctx := context.Background()
	enospc := &os.PathError{Op: "write", Path: "swap.db", Err: syscall.ENOSPC}
	tests := []struct {
		name     string
		fail     func(i int, k Key) error
		wantErr  bool
		wantLeft int
	}{
		{"only single-key transactions fit", func(i int, k Key) error {
			if i > 0 {
				return enospc
			}
			return nil
		}, false, 0},
		{"one key never fits", func(i int, k Key) error {
			if i > 0 || k == testKey(5) {
				return enospc
			}
			return nil
		}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			s := openTest(t, cfg)
			var keys []Key
			for i := range 9 {
				keys = append(keys, testKey(i))
				if err := s.Put(ctx, testKey(i), testMeta(i), []byte("payload")); err != nil {
					t.Fatal(err)
				}
			}
			s.hooks.beforeDelete = tt.fail
			err := s.DeleteBatch(ctx, keys)
			s.hooks.beforeDelete = nil
			if (err != nil) != tt.wantErr || err != nil && !errors.Is(err, ErrFull) {
				t.Fatalf("DeleteBatch: %v, want error %v (ErrFull)", err, tt.wantErr)
			}
			if n := s.Stats().Entries; n != int64(tt.wantLeft) {
				t.Errorf("%d entries left, want %d", n, tt.wantLeft)
			}
		})
	}
}
