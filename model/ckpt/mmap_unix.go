//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package ckpt

import (
	"fmt"
	"math"
	"os"
	"syscall"
)

// Open maps the file at path read-only and parses it; the tensors view the mapping, so
// opening costs no copy and pages load on first use. Close unmaps it.
func Open(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	size := fi.Size()
	if size < legacyHeaderSize {
		// mmap cannot map an empty file; Parse explains a short one.
		data := make([]byte, size)
		if _, err := f.ReadAt(data, 0); err != nil && size > 0 {
			return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
		}
		_, err := Parse(data)
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("checkpoint %s: %w: %d bytes cannot be mapped", path, ErrShape, size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map checkpoint %s: %w", path, err)
	}
	ck, err := Parse(data)
	if err != nil {
		syscall.Munmap(data)
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	ck.mapped = true
	return ck, nil
}

func unmap(data []byte) error {
	if err := syscall.Munmap(data); err != nil {
		return fmt.Errorf("unmap checkpoint: %w", err)
	}
	return nil
}
