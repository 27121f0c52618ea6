//go:build amd64 && !purego

package tensor

import "testing"

// setAsm switches the assembly kernels on or off for the duration of the test.
func setAsm(t *testing.T, on bool) {
	old := hasAVX512
	hasAVX512 = on && old
	t.Cleanup(func() { hasAVX512 = old })
}
