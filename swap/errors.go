package swap

import "errors"

// Sentinel errors callers branch on. Errors returned by the Store wrap these
// with context; test with errors.Is.
var (
	// ErrNotFound: no entry is stored under the key. The caller recomputes
	// the block (or treats it as a cache miss).
	ErrNotFound = errors.New("swap: block not found")

	// ErrCorrupt: the stored entry failed its checksum or could not be
	// decoded. The entry has been deleted; the caller recomputes the block's
	// tokens. It is never served.
	ErrCorrupt = errors.New("swap: block corrupt")

	// ErrFull: the tier is at Config.MaxBytes or the file system holding
	// the file is full (ENOSPC/EDQUOT). Nothing of the refused write was
	// stored. The caller keeps the block in memory, evicts disk entries with
	// Delete, or drops the block and recomputes it later.
	ErrFull = errors.New("swap: tier full")

	// ErrClosed: the Store was used after Close.
	ErrClosed = errors.New("swap: store closed")
)

// isFull reports whether err is ErrFull.
func isFull(err error) bool { return errors.Is(err, ErrFull) }
