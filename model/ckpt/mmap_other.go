//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package ckpt

import (
	"fmt"
	"os"
)

// Open reads the file at path into memory and parses it (this platform has no mmap here).
func Open(path string) (*Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	ck, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return ck, nil
}

func unmap([]byte) error { return nil }
