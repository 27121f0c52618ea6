package swap

import (
	"errors"
	"log/slog"
	"time"
)

// Config configures a Store. The zero value of every field except Path and
// Identity is a usable default; DefaultConfig spells them out.
type Config struct {
	// Path is the bbolt file. Required. Its directory must exist. A file set
	// aside gets a sibling name Path+".corrupt-<unix>" or Path+".foreign-<unix>".
	Path string

	// Identity names the model and KV layout the blocks belong to (e.g. the
	// hex hash of checkpoint + tokenizer + KV layout + layer range). Required.
	// A file written under another identity is set aside, never read.
	Identity string

	// MaxBytes is the capacity of the tier in stored bytes: the sum over
	// entries of payload + header (16 B) + meta (38 B + 4 B per token), i.e.
	// 118 B over the payload for a 16-token block. 0 means unlimited (then
	// only the file system bounds it). A Put that would pass it returns
	// ErrFull. bbolt's own overhead (branch pages, free pages, page
	// rounding) is not counted: size the volume some 10% above MaxBytes.
	MaxBytes int64

	// NoSync skips the fsync at the end of each write transaction (bbolt's
	// DB.NoSync). Default false: every Put/PutBatch/Delete is durable when it
	// returns. With NoSync a process crash loses nothing (the writes are in
	// the page cache), but a power loss or kernel crash may leave a file
	// that fails its checks at the next Open; it is then set aside and the
	// cache restarts cold. Measured cost in docs/benchmarks-swap.md.
	NoSync bool

	// LockTimeout bounds the wait for bbolt's file lock when another process
	// holds the file. Default 2s. Open fails (and sets nothing aside) on timeout.
	LockTimeout time.Duration

	// KeepSetAside is how many files set aside (corrupt or foreign) to keep
	// next to Path, newest first; when Open sets another one aside, older
	// ones are deleted, so a crash loop cannot fill the swap volume with
	// copies. 0 means the default, 1; negative keeps them all.
	KeepSetAside int

	// Logger receives the set-aside warnings and corruption reports.
	// Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in, for path and
// identity.
func DefaultConfig(path, identity string) Config {
	c := Config{Path: path, Identity: identity}
	_ = c.validate()
	return c
}

// validate fills zero values with their defaults and rejects bad ones.
func (c *Config) validate() error {
	if c.Path == "" {
		return errors.New("swap: Config.Path is empty")
	}
	if c.Identity == "" {
		return errors.New("swap: Config.Identity is empty")
	}
	if c.MaxBytes < 0 {
		return errors.New("swap: Config.MaxBytes is negative")
	}
	if c.LockTimeout < 0 {
		return errors.New("swap: Config.LockTimeout is negative")
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = 2 * time.Second
	}
	if c.KeepSetAside == 0 {
		c.KeepSetAside = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
