package swap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// maxScratch bounds the encode buffer a Store keeps between writes; a larger
// batch allocates a buffer for the call and lets the GC take it back, so the
// swap tier does not pin memory while the worker is short of it.
const maxScratch = 8 << 20

// Store is the disk tier: KV blocks in one bbolt file, each checksummed.
// It is safe for concurrent use: reads run in parallel bbolt read
// transactions; writes are serialised by mu (bbolt serialises them anyway,
// and mu keeps the byte accounting exact).
type Store struct {
	cfg Config
	db  *bolt.DB
	log *slog.Logger

	mu      sync.Mutex // serialises write transactions; protects scratch and makes bytes/entries match the committed file
	scratch []byte     // encode buffer for writes, ≤ maxScratch bytes kept

	entries   atomic.Int64 // entries in the file
	bytes     atomic.Int64 // stored bytes (sum of value lengths) in the file
	fileBytes atomic.Int64 // size of the bbolt file's used pages as of the last transaction
	written   atomic.Int64 // payload bytes stored by Put/PutBatch since Open
	read      atomic.Int64 // payload bytes returned by Get/GetBatch since Open
	corrupt   atomic.Int64 // entries dropped as corrupt since Open
	full      atomic.Int64 // writes refused with ErrFull since Open
	damaged   atomic.Bool  // bbolt panicked on the file since Open

	opened bool  // set once open has finished; read-only after
	hooks  hooks // test seams; zero in production
}

// hooks are failpoints at the disk boundary, set by tests only (STYLE 15).
type hooks struct {
	// afterRead sees every stored value as read from bbolt, before it is
	// decoded, and returns the bytes to decode (a copy if it changes them:
	// v is read-only mmap memory).
	afterRead func(k Key, v []byte) []byte
	// beforeWrite sees every encoded value before bbolt stores it; it may
	// change v in place (after the checksum was computed) or return an
	// error, which aborts the write transaction as a disk error would.
	beforeWrite func(k Key, v []byte) error
	// beforeDelete sees the i-th key a write transaction deletes; an error
	// aborts the transaction as a disk error would.
	beforeDelete func(i int, k Key) error
}

// Stats is a snapshot of a Store's counters.
type Stats struct {
	Entries      int64 // entries in the file
	StoredBytes  int64 // sum of stored value sizes (payload + header + meta); what Config.MaxBytes bounds
	FileBytes    int64 // bbolt file size in use (pages up to the high-water mark) as of the last transaction
	BytesWritten int64 // payload bytes written by Put/PutBatch since Open
	BytesRead    int64 // payload bytes returned by Get/GetBatch since Open
	Corrupt      int64 // entries dropped as corrupt since Open (found by Get, GetBatch, Range or Open)
	Full         int64 // writes refused with ErrFull since Open
	Damaged      bool  // bbolt panicked on the file since Open: its tree is damaged; Close and Open the store to set the file aside
}

// Stats returns a snapshot of the counters. The fields are read one by one,
// so a snapshot taken during a write may mix before and after.
func (s *Store) Stats() Stats {
	return Stats{
		Entries:      s.entries.Load(),
		StoredBytes:  s.bytes.Load(),
		FileBytes:    s.fileBytes.Load(),
		BytesWritten: s.written.Load(),
		BytesRead:    s.read.Load(),
		Corrupt:      s.corrupt.Load(),
		Full:         s.full.Load(),
		Damaged:      s.damaged.Load(),
	}
}

// Open creates the file at cfg.Path or reopens it (a warm restart: the
// entries it holds are served again). A file that is corrupt (bbolt refuses
// it, panics on it, or its structure fails the walk Open does) or foreign
// (not a kvmesh swap file, another format version, another Identity) is
// renamed to Path+".corrupt-<unix>" or Path+".foreign-<unix>", a Warn line
// says why and where it went, and a fresh file is started. Entries whose
// header fails its checksum are dropped one by one without setting the file
// aside. Errors that say nothing about the file's content (permissions, the
// lock held by another process) are returned and nothing is renamed. On a
// full volume Open returns an error wrapping ErrFull (the worker can run
// without the tier); when the file it just set aside is what fills the
// volume, it deletes that copy to make room for the fresh file.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("swap: open %s: %w", cfg.Path, err)
	}
	s, err := open(cfg)
	var sa *setAsideError
	if !errors.As(err, &sa) {
		return s, err
	}
	moved, rerr := setAside(cfg.Path, sa.kind)
	if rerr != nil {
		return nil, fmt.Errorf("swap: open %s: %w; setting it aside failed: %w", cfg.Path, err, rerr)
	}
	cfg.Logger.Warn("swap: file set aside, starting a fresh one",
		"path", cfg.Path, "kind", sa.kind, "moved_to", moved, "reason", sa.err.Error())
	pruneSetAside(cfg)
	s, err = open(cfg)
	if errors.Is(err, ErrFull) {
		// The volume is full, and the file just set aside holds the room a
		// fresh one needs: a worker that serves matters more than the copy.
		if rerr := os.Remove(moved); rerr == nil {
			cfg.Logger.Warn("swap: no room for a fresh file; deleted the file set aside", "path", moved)
			_ = os.Remove(cfg.Path) // the fresh file bbolt could not finish
			s, err = open(cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("swap: open fresh %s after setting the old one aside: %w", cfg.Path, err)
	}
	return s, nil
}

// open opens cfg.Path once. A *setAsideError means the file must be set aside.
func open(cfg Config) (s *Store, err error) {
	db, err := boltOpen(cfg)
	if err != nil {
		return nil, err
	}
	s = &Store{cfg: cfg, db: db, log: cfg.Logger}
	defer func() {
		if err != nil {
			closeQuietly(db)
			s = nil
		}
	}()
	if err := s.initMeta(); err != nil {
		return nil, asCorrupt(err)
	}
	if err := s.scan(); err != nil {
		return nil, asCorrupt(err)
	}
	s.opened = true
	return s, nil
}

// boltOpen opens the bbolt file, turning bbolt's verdicts on the content
// (and its panics) into a *setAsideError.
func boltOpen(cfg Config) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, &setAsideError{"corrupt", fmt.Errorf("bbolt panicked opening it: %v", r)}
		}
	}()
	db, err = bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout:         cfg.LockTimeout,
		NoSync:          cfg.NoSync,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: initialMmapSize(cfg.MaxBytes),
	})
	if err == nil {
		return db, nil
	}
	var pe *fs.PathError
	if isNoSpace(err) {
		return nil, fmt.Errorf("%w: open %s: %w", ErrFull, cfg.Path, err)
	}
	if errors.Is(err, berrors.ErrTimeout) || errors.As(err, &pe) {
		return nil, fmt.Errorf("swap: open %s: %w", cfg.Path, err)
	}
	return nil, &setAsideError{"corrupt", fmt.Errorf("bbolt: %w", err)}
}

// initialMmapSize is the address space bbolt maps up front: enough for the
// whole tier (MaxBytes and a quarter for bbolt's overhead), 4 GiB when the
// tier is unbounded. Growing the map makes bbolt wait for every read
// transaction (a prefetch stalls the swap-out) and copy every dirty value of
// the write transaction to the heap (BenchmarkPut measured 315 MB of copies
// over 5 batches of 38 MB on a fresh file); mapping beyond the end of the
// file costs only address space, the file still grows as written.
func initialMmapSize(maxBytes int64) int {
	const unbounded, floor = 4 << 30, 64 << 20
	if maxBytes == 0 {
		return unbounded
	}
	return int(min(max(maxBytes+maxBytes/4, floor), 1<<40))
}

// initMeta writes the meta bucket of a new file, or checks that an existing
// file is a swap file of this format and identity.
func (s *Store) initMeta() error {
	empty := false
	err := s.view(func(tx *bolt.Tx) error {
		var names []string
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, string(name))
			return nil
		}); err != nil {
			return err
		}
		if len(names) == 0 {
			empty = true
			return nil
		}
		mb, bb := tx.Bucket(metaBucket), tx.Bucket(blocksBucket)
		if len(names) != 2 || mb == nil || bb == nil {
			return &setAsideError{"foreign", fmt.Errorf("not a kvmesh swap file: top-level buckets %q", names)}
		}
		f := mb.Get(keyFormat)
		if len(f) != 4 {
			return &setAsideError{"foreign", fmt.Errorf("meta bucket has a %d-byte format key", len(f))}
		}
		if v := binary.LittleEndian.Uint32(f); v != formatVersion {
			return &setAsideError{"foreign", fmt.Errorf("format version %d, this build reads %d", v, formatVersion)}
		}
		if id := mb.Get(keyIdentity); string(id) != s.cfg.Identity {
			return &setAsideError{"foreign", fmt.Errorf("written for identity %q, this worker is %q", id, s.cfg.Identity)}
		}
		return nil
	})
	if err != nil || !empty {
		return err
	}
	return s.update(s.createLayout)
}

func (s *Store) createLayout(tx *bolt.Tx) error {
	mb, err := tx.CreateBucket(metaBucket)
	if err != nil {
		return err
	}
	if _, err := tx.CreateBucket(blocksBucket); err != nil {
		return err
	}
	var f [4]byte
	binary.LittleEndian.PutUint32(f[:], formatVersion)
	var c [8]byte
	binary.LittleEndian.PutUint64(c[:], uint64(time.Now().UnixNano()))
	for _, kv := range [][2][]byte{{keyFormat, f[:]}, {keyIdentity, []byte(s.cfg.Identity)}, {keyCreated, c[:]}} {
		if err := mb.Put(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// scan walks every entry once: it recomputes the counters, checks each
// header checksum (dropping entries that fail) and, by walking every branch
// and leaf page of the blocks bucket, turns structural corruption into a
// panic or a decode error here rather than later. A panic means the file is
// corrupt.
func (s *Store) scan() error {
	var n, bytes int64
	var bad []Key
	err := s.view(func(tx *bolt.Tx) error {
		s.fileBytes.Store(tx.Size())
		var tokens []int32
		return walkEntries(tx, func(k *Key, v []byte, stray bool) bool {
			n++
			bytes += int64(len(v))
			m, _, err := decodeHeader(k, v, tokens)
			if stray || err != nil {
				bad = append(bad, *k)
				s.log.Warn("swap: dropping corrupt entry", "path", s.cfg.Path, "key", k.String(), "err", entryErr(stray, err).Error())
				return true
			}
			tokens = m.Tokens
			return true
		})
	})
	if err != nil {
		return err
	}
	s.entries.Store(n)
	s.bytes.Store(bytes)
	if len(bad) > 0 {
		// Left in place if this fails (say the disk is full): Get and Range
		// find them corrupt again and retry.
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.deleteSplitLocked(bad, true); err != nil {
			s.log.Error("swap: could not delete corrupt entries", "path", s.cfg.Path, "n", len(bad), "err", err.Error())
		}
	}
	return nil
}

// Close closes the file. Calls after Close return ErrClosed. Close waits for
// transactions in flight.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("swap: close %s: %w", s.cfg.Path, err)
	}
	return nil
}

// view runs fn in a bbolt read transaction. A panic inside bbolt (which it
// raises on some corrupt pages) or a fault on the mapped file becomes an
// error wrapping ErrCorrupt.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.recoverCorrupt(&err)
	return s.mapErr(s.db.View(fn))
}

// update runs fn in a bbolt write transaction, like view. The caller holds
// s.mu or is open (which has no concurrency yet).
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.recoverCorrupt(&err)
	return s.mapErr(s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		s.fileBytes.Store(tx.Size())
		return nil
	}))
}

func (s *Store) recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: bbolt panicked on %s: %v", ErrCorrupt, s.cfg.Path, r)
		if !s.opened {
			return // Open sets the file aside and says so
		}
		s.damaged.Store(true)
		s.log.Error("swap: bbolt panicked; the file is damaged, reopen the store to set it aside", "path", s.cfg.Path, "panic", fmt.Sprint(r))
	}
}

// mapErr maps bbolt and file system errors to the package's sentinels.
func (s *Store) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("%w: %s", ErrClosed, s.cfg.Path)
	case isNoSpace(err):
		return fmt.Errorf("%w: %s: %w", ErrFull, s.cfg.Path, err)
	}
	return err
}

// isNoSpace reports whether err is the file system being full. bbolt wraps
// some errors with %s (file resize), so the message is matched as well.
func isNoSpace(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}
