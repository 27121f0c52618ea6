package swap

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// Entry is one block of a batch. PutBatch reads Key, Meta and Payload.
// GetBatch reads Key, uses Payload as the destination buffer (reused if its
// capacity suffices) and sets Meta, Payload and Err.
type Entry struct {
	Key     Key
	Meta    Meta
	Payload []byte // the block's bytes (opaque to the store)
	Err     error  // set by GetBatch: nil, ErrNotFound or ErrCorrupt (wrapped); ignored by PutBatch
}

// check returns the error for an operation that must not start.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	return nil
}

// Put stores payload and meta under k, replacing any entry there. The value
// is checksummed (CRC-32C over key, header and meta, and over the payload).
// It returns ErrFull when the entry would take the tier past
// Config.MaxBytes or the file system is full; nothing is written then.
// Put is durable on return unless Config.NoSync.
func (s *Store) Put(ctx context.Context, k Key, meta Meta, payload []byte) error {
	e := [1]Entry{{Key: k, Meta: meta, Payload: payload}}
	return s.PutBatch(ctx, e[:])
}

// PutBatch stores every entry in one bbolt transaction (one fsync). It is
// atomic: either all entries are stored, or none (ErrFull when all of them
// together would pass Config.MaxBytes or the disk fills). A key repeated in
// the batch keeps its last entry.
func (s *Store) PutBatch(ctx context.Context, es []Entry) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(es) == 0 {
		return nil
	}
	total, payload := 0, int64(0)
	for i := range es {
		if n := len(es[i].Meta.Tokens); n > MaxTokens {
			return fmt.Errorf("swap: put %s: %d tokens in one block, max %d", es[i].Key, n, MaxTokens)
		}
		if int64(len(es[i].Payload)) > maxPayload {
			return fmt.Errorf("swap: put %s: payload of %d bytes, max %d", es[i].Key, len(es[i].Payload), int64(maxPayload))
		}
		total += valueSize(&es[i].Meta, len(es[i].Payload))
		payload += int64(len(es[i].Payload))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	buf := s.scratchLocked(total)
	var delta, added int64
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(blocksBucket)
		off := 0
		for i := range es {
			e := &es[i]
			v := buf[off : off+valueSize(&e.Meta, len(e.Payload))]
			off += len(v)
			encodeValue(v, &e.Key, &e.Meta, e.Payload)
			if h := s.hooks.beforeWrite; h != nil {
				if err := h(e.Key, v); err != nil {
					return err
				}
			}
			if old, ok, _ := lookup(b, e.Key[:]); ok {
				delta -= int64(len(old))
			} else {
				added++
			}
			delta += int64(len(v))
			if err := putEntry(b, e.Key[:], v); err != nil {
				return fmt.Errorf("swap: put %s: %w", e.Key, err)
			}
		}
		if limit := s.cfg.MaxBytes; limit > 0 && s.bytes.Load()+delta > limit {
			return fmt.Errorf("%w: %d stored bytes + %d > MaxBytes %d", ErrFull, s.bytes.Load(), delta, limit)
		}
		return nil
	})
	if err != nil {
		if isFull(err) {
			s.full.Add(1)
		}
		return fmt.Errorf("swap: put %d entries: %w", len(es), err)
	}
	s.bytes.Add(delta)
	s.entries.Add(added)
	s.written.Add(payload)
	return nil
}

// maxPayload keeps a value under bbolt's MaxValueSize (2 GiB - 2) and its
// length within the header's uint32.
const maxPayload = 1<<31 - 2 - headerSize - (1<<16 - 1)

// scratchLocked returns a buffer of n bytes for encoding values. s.mu held.
func (s *Store) scratchLocked(n int) []byte {
	if n > maxScratch {
		return make([]byte, n)
	}
	if cap(s.scratch) < n {
		s.scratch = make([]byte, n, min(max(n, 2*cap(s.scratch)), maxScratch))
	}
	return s.scratch[:n]
}

// Get returns the entry under k: its meta and its payload, copied into
// dst[:0] (grown if its capacity is short; pass a block-sized buffer to
// allocate nothing for the payload). It returns ErrNotFound, or ErrCorrupt
// when the entry fails its checksum: that entry is then deleted, counted in
// Stats.Corrupt, and the caller recomputes the block. Meta.Tokens is newly
// allocated (GetBatch can reuse a buffer for it).
func (s *Store) Get(ctx context.Context, k Key, dst []byte) (Meta, []byte, error) {
	e := [1]Entry{{Key: k, Payload: dst}}
	if err := s.GetBatch(ctx, e[:]); err != nil {
		return Meta{}, dst[:0], err
	}
	return e[0].Meta, e[0].Payload, e[0].Err
}

// GetBatch reads every entry's Key in one read transaction and fills in
// Meta (its Tokens decoded into the entry's Meta.Tokens buffer), Payload
// (copied into the entry's Payload buffer) and Err (nil,
// ErrNotFound, or ErrCorrupt, in which case that entry was deleted). The
// returned error is for the batch as a whole (closed store, cancelled
// context, a damaged file).
func (s *Store) GetBatch(ctx context.Context, es []Entry) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var bad []int
	var read int64
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(blocksBucket)
		for i := range es {
			e := &es[i]
			e.Payload, e.Err = e.Payload[:0], nil
			e.Meta = Meta{Tokens: e.Meta.Tokens[:0]}
			v, ok, stray := lookup(b, e.Key[:])
			if !ok {
				e.Err = fmt.Errorf("swap: get %s: %w", e.Key, ErrNotFound)
				continue
			}
			m, p, err := s.readValue(&e.Key, v, e.Payload, e.Meta.Tokens)
			if err = entryErr(stray, err); err != nil {
				e.Err = fmt.Errorf("swap: get %s: %w", e.Key, err)
				bad = append(bad, i)
				continue
			}
			e.Meta, e.Payload = m, p
			read += int64(len(p))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("swap: get %d entries: %w", len(es), err)
	}
	s.read.Add(read)
	if len(bad) > 0 {
		keys := make([]Key, len(bad))
		for j, i := range bad {
			keys[j] = es[i].Key
			s.log.Warn("swap: dropping corrupt entry", "path", s.cfg.Path, "key", es[i].Key.String(), "err", es[i].Err.Error())
		}
		s.dropCorrupt(keys)
	}
	return nil
}

// readValue decodes the stored value v of *k, copying the payload into
// dst[:0] and the tokens into tokens[:0], and checks the payload checksum on
// the copy (which is then hot in cache). k is a pointer so that it does not
// escape to the heap on every read.
func (s *Store) readValue(k *Key, v, dst []byte, tokens []int32) (Meta, []byte, error) {
	if h := s.hooks.afterRead; h != nil {
		v = h(*k, v)
	}
	m, p, err := decodeHeader(k, v, tokens)
	if err != nil {
		return Meta{}, dst[:0], err
	}
	dst = append(dst[:0], p...)
	if got, want := crc32.Checksum(dst, crcTable), binary.LittleEndian.Uint32(v[12:16]); got != want {
		return Meta{}, dst[:0], fmt.Errorf("%w: payload checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	return m, dst, nil
}

// dropCorrupt deletes the entries under keys that still fail their checksum
// (a concurrent Put may have replaced one with a good value meanwhile).
// Failure to delete is logged, not returned: the caller recomputes anyway
// and the next read finds the entry corrupt again.
func (s *Store) dropCorrupt(keys []Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteSplitLocked(keys, true); err != nil {
		s.log.Error("swap: could not delete corrupt entries", "path", s.cfg.Path, "n", len(keys), "err", err.Error())
	}
}

// Delete removes the entry under k, if any (deleting a missing key is not
// an error).
func (s *Store) Delete(ctx context.Context, k Key) error {
	ks := [1]Key{k}
	return s.DeleteBatch(ctx, ks[:])
}

// DeleteBatch removes the entries under keys in one transaction. On a full
// file system that transaction can fail for want of pages to copy the tree
// into (bbolt frees the deleted pages only at commit); DeleteBatch then
// splits the batch in halves down to one key per transaction, which needs
// only the pages earlier transactions freed, so deleting works on a full
// disk too.
func (s *Store) DeleteBatch(ctx context.Context, keys []Key) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteSplitLocked(keys, false); err != nil {
		return fmt.Errorf("swap: delete %d entries: %w", len(keys), err)
	}
	return nil
}

// deleteSplitLocked deletes keys (only those that fail their checksum if
// onlyCorrupt), halving the batch while the disk is full; a key that cannot
// be deleted even alone does not stop the others (each deletion frees
// pages the next may need). s.mu held.
func (s *Store) deleteSplitLocked(keys []Key, onlyCorrupt bool) error {
	err := s.deleteLocked(keys, onlyCorrupt)
	if err == nil || len(keys) == 1 || !isFull(err) {
		return err
	}
	h := len(keys) / 2
	err1 := s.deleteSplitLocked(keys[:h], onlyCorrupt)
	err2 := s.deleteSplitLocked(keys[h:], onlyCorrupt)
	if err1 != nil {
		return err1
	}
	return err2
}

// deleteLocked deletes keys in one transaction. s.mu held.
func (s *Store) deleteLocked(keys []Key, onlyCorrupt bool) error {
	var n, freed int64
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(blocksBucket)
		n, freed = 0, 0
		for _, k := range keys {
			v, ok, stray := lookup(b, k[:])
			if !ok || onlyCorrupt && !stray && !s.isCorrupt(k, v) {
				continue
			}
			if h := s.hooks.beforeDelete; h != nil {
				if err := h(int(n), k); err != nil {
					return err
				}
			}
			freed += int64(len(v))
			n++
			if err := deleteEntry(b, k[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.entries.Add(-n)
	s.bytes.Add(-freed)
	if onlyCorrupt {
		s.corrupt.Add(n)
	}
	return nil
}

// isCorrupt reports whether the stored value v of k fails its checks (as
// read through the afterRead failpoint).
func (s *Store) isCorrupt(k Key, v []byte) bool {
	if h := s.hooks.afterRead; h != nil {
		v = h(k, v)
	}
	_, _, err := decodeValue(&k, v, nil)
	return err != nil
}

// Prune is a warm restart's sweep: it deletes every entry keep refuses (another type,
// another encoding, a sequence of a previous run) and returns the keys of the rest, in key
// order. keep runs as Range's fn does.
func (s *Store) Prune(ctx context.Context, keep func(k Key, m Meta) bool) ([]Key, error) {
	var kept, stale []Key
	err := s.Range(func(k Key, m Meta) bool {
		if keep(k, m) {
			kept = append(kept, k)
		} else {
			stale = append(stale, k)
		}
		return true
	})
	if err == nil {
		err = s.DeleteBatch(ctx, stale)
	}
	if err != nil {
		return nil, err
	}
	return kept, nil
}

// Range calls fn for every entry in key order with its meta, without
// reading or checking payloads (it checks each header's checksum), until fn
// returns false. It is what a warm restart rebuilds its index from. Entries
// whose header fails its checksum are skipped and deleted after the walk.
//
// fn runs inside a bbolt read transaction: it must not call any method of
// the Store (a write could deadlock on bbolt's remap lock); collect keys and
// act after Range returns. m.Tokens is fn's to keep.
func (s *Store) Range(fn func(k Key, m Meta) bool) error {
	var bad []Key
	err := s.view(func(tx *bolt.Tx) error {
		return walkEntries(tx, func(k *Key, v []byte, stray bool) bool {
			if h := s.hooks.afterRead; h != nil {
				v = h(*k, v)
			}
			m, _, err := decodeHeader(k, v, nil)
			if stray || err != nil {
				s.log.Warn("swap: dropping corrupt entry", "path", s.cfg.Path, "key", k.String(), "err", entryErr(stray, err).Error())
				bad = append(bad, *k)
				return true
			}
			return fn(*k, m)
		})
	})
	if len(bad) > 0 {
		s.dropCorrupt(bad)
	}
	if err != nil {
		return fmt.Errorf("swap: range: %w", err)
	}
	return nil
}
