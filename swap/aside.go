package swap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// setAsideError marks an Open failure that means "this file is not ours to
// read": kind is "corrupt" or "foreign".
type setAsideError struct {
	kind string
	err  error
}

func (e *setAsideError) Error() string { return e.kind + " file: " + e.err.Error() }
func (e *setAsideError) Unwrap() error { return e.err }

// asCorrupt turns a panic recovered while opening (an error wrapping
// ErrCorrupt) into a *setAsideError; other errors pass through.
func asCorrupt(err error) error {
	var sa *setAsideError
	if !errors.As(err, &sa) && errors.Is(err, ErrCorrupt) {
		return &setAsideError{"corrupt", err}
	}
	return err
}

// setAside renames path to path.<kind>-<unix>[-n] and returns the new name.
// n (from 2) is one more than that of any file set aside in the same second,
// of either kind, so that (unix, n) orders the files set aside.
func setAside(path, kind string) (string, error) {
	unix := time.Now().Unix()
	n := int64(0)
	for _, f := range listSetAside(path) {
		if f.unix == unix {
			n = max(n, f.seq)
		}
	}
	dst := fmt.Sprintf("%s.%s-%d", path, kind, unix)
	if n > 0 {
		dst = fmt.Sprintf("%s-%d", dst, n+1)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("swap: %s exists", dst)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// setAsideName is one file set aside next to a Path, with the order it was
// set aside in.
type setAsideName struct {
	path      string
	unix, seq int64
}

// pruneSetAside deletes the files set aside next to cfg.Path beyond the
// newest cfg.KeepSetAside, so that a crash loop on a damaged volume cannot
// fill the swap volume with copies. Failures are logged, not returned.
func pruneSetAside(cfg Config) {
	if cfg.KeepSetAside < 0 {
		return
	}
	names := listSetAside(cfg.Path)
	slices.SortFunc(names, func(a, b setAsideName) int { // newest first
		if a.unix != b.unix {
			return int(b.unix - a.unix)
		}
		return int(b.seq - a.seq)
	})
	for _, n := range names[min(cfg.KeepSetAside, len(names)):] {
		if err := os.Remove(n.path); err != nil {
			cfg.Logger.Warn("swap: could not remove an old set-aside file", "path", n.path, "err", err.Error())
			continue
		}
		cfg.Logger.Info("swap: removed an old set-aside file", "path", n.path, "keep", cfg.KeepSetAside)
	}
}

// listSetAside lists the files set aside next to path, of both kinds.
func listSetAside(path string) []setAsideName {
	var names []setAsideName
	for _, kind := range []string{"corrupt", "foreign"} {
		prefix := path + "." + kind + "-"
		m, err := filepath.Glob(globEscape(prefix) + "*")
		if err != nil {
			continue
		}
		for _, p := range m {
			if unix, seq, ok := parseSetAside(strings.TrimPrefix(p, prefix)); ok {
				names = append(names, setAsideName{p, unix, seq})
			}
		}
	}
	return names
}

// parseSetAside parses the "<unix>[-<n>]" suffix of a set-aside name.
func parseSetAside(suffix string) (unix, seq int64, ok bool) {
	u, n, hasSeq := strings.Cut(suffix, "-")
	unix, err := strconv.ParseInt(u, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	seq = 1
	if hasSeq {
		if seq, err = strconv.ParseInt(n, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return unix, seq, true
}

// globEscape escapes the pattern characters of filepath.Match in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
