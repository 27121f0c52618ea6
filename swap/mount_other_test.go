//go:build !linux

package swap

import "testing"

// mountTmpfs skips: a size-limited tmpfs is a Linux test fixture.
func mountTmpfs(t *testing.T, size string) string {
	t.Skip("needs a Linux tmpfs")
	return ""
}
