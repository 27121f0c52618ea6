package swap

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket and key names of the file layout (see doc.go).
var (
	metaBucket   = []byte("meta")
	blocksBucket = []byte("blocks")
	keyFormat    = []byte("format")   // uint32 LE, formatVersion
	keyIdentity  = []byte("identity") // Config.Identity, bytes
	keyCreated   = []byte("created")  // int64 LE, unix nanoseconds
	keyValue     = []byte("v")        // the one key of an entry's bucket
)

// Each entry is a bucket of its own inside the blocks bucket, holding its
// value under keyValue. bbolt keeps at least two (up to four) keys in a leaf
// page, so with the values directly in the blocks bucket every Put and
// Delete rewrote the one to three other blocks sharing the leaf: measured
// 3.2-4.0 blocks written per block stored. An entry bucket's root leaf holds
// one value, so a write copies only its own block and the small leaf of
// bucket headers above it.

// lookup returns what the blocks bucket b holds under k: ok is false if
// nothing; v is the stored value of the entry bucket (nil if it has none).
// stray is set when k holds a plain value instead of an entry bucket, which
// this layout never writes: v is then that value and the entry counts as
// corrupt.
func lookup(b *bolt.Bucket, k []byte) (v []byte, ok, stray bool) {
	if eb := b.Bucket(k); eb != nil {
		return eb.Get(keyValue), true, false
	}
	if v := b.Get(k); v != nil {
		return v, true, true
	}
	return nil, false, false
}

// putEntry stores v as the entry under k, replacing what is there.
func putEntry(b *bolt.Bucket, k, v []byte) error {
	eb, err := b.CreateBucketIfNotExists(k)
	if errors.Is(err, berrors.ErrIncompatibleValue) { // a stray value
		if err := b.Delete(k); err != nil {
			return err
		}
		eb, err = b.CreateBucket(k)
	}
	if err != nil {
		return err
	}
	return eb.Put(keyValue, v)
}

// deleteEntry removes whatever k holds in b; a missing key is not an error.
func deleteEntry(b *bolt.Bucket, k []byte) error {
	err := b.DeleteBucket(k)
	switch {
	case errors.Is(err, berrors.ErrBucketNotFound):
		return nil
	case errors.Is(err, berrors.ErrIncompatibleValue):
		return b.Delete(k)
	}
	return err
}

// walkEntries calls fn for every entry of the blocks bucket in key order
// with its stored value (nil for an entry bucket without one) and whether
// it is stray, until fn returns false. A key that is not 32 bytes long
// means the file is damaged.
func walkEntries(tx *bolt.Tx, fn func(k *Key, v []byte, stray bool) bool) error {
	b := tx.Bucket(blocksBucket)
	c := b.Cursor()
	var k Key
	for kb, v := c.First(); kb != nil; kb, v = c.Next() {
		if len(kb) != len(k) {
			return fmt.Errorf("%w: the blocks bucket holds a %d-byte key", ErrCorrupt, len(kb))
		}
		k = Key(kb)
		stray := v != nil
		if !stray {
			v = b.Bucket(kb).Get(keyValue)
		}
		if !fn(&k, v, stray) {
			return nil
		}
	}
	return nil
}

// entryErr is the error of a stray entry, or err.
func entryErr(stray bool, err error) error {
	if stray {
		return fmt.Errorf("%w: a plain value where an entry bucket belongs", ErrCorrupt)
	}
	return err
}
